import threading

import pytest
from sqlalchemy import func, select, text

from app.errors import AlreadyReversed, InsufficientPoints, InvalidInput
from app.extensions import db
from app.households.models import Household
from app.ledger import services as ledger
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry

from .. import factories


def balance(h_id):
    db.session.rollback()  # end this session's read snapshot; see what writers committed
    return db.session.get(Household, h_id).balance


def test_award_deduct_and_redeem_keep_balance_and_balance_after(village):
    h = factories.household(village)
    ledger.award(village.id, h.id, 30, "清洁日", None)
    ledger.deduct(village.id, h.id, 5, "乱堆乱放", None)
    e = ledger.redeem(village.id, h.id, 20, "大米", None)
    assert e.points == -20 and e.balance_after == 5
    assert balance(h.id) == 5
    total = db.session.scalar(
        select(func.sum(LedgerEntry.points)).where(LedgerEntry.household_id == h.id)
    )
    assert total == 5
    assert verify() == []


def test_redeem_refuses_when_balance_is_too_low(village):
    h = factories.household(village, opening=10)
    with pytest.raises(InsufficientPoints):
        ledger.redeem(village.id, h.id, 11, "油", None)
    assert balance(h.id) == 10
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1


def test_deduction_may_take_balance_below_zero(village):
    h = factories.household(village)
    ledger.deduct(village.id, h.id, 15, "焚烧秸秆", None)
    assert balance(h.id) == -15


def test_same_key_is_recorded_once(village):
    h = factories.household(village, opening=50)
    a = ledger.redeem(village.id, h.id, 20, "大米", None, key="req-1")
    b = ledger.redeem(village.id, h.id, 20, "大米", None, key="req-1")
    assert a.id == b.id
    assert balance(h.id) == 30


def test_reverse_posts_the_opposite_once(village):
    h = factories.household(village, opening=50)
    e = ledger.redeem(village.id, h.id, 20, "大米", None)
    r = ledger.reverse(village.id, e.id, "作废", None)
    assert r.points == 20 and r.reverses_id == e.id and balance(h.id) == 50
    with pytest.raises(AlreadyReversed):
        ledger.reverse(village.id, e.id, "作废", None)
    with pytest.raises(InvalidInput):
        ledger.reverse(village.id, r.id, "再作废", None)
    assert verify() == []


def test_bad_points_and_missing_reason_write_nothing(village):
    h = factories.household(village)
    for pts in (0, -5, 10**9, "10", True):
        with pytest.raises(InvalidInput):
            ledger.award(village.id, h.id, pts, "x", None)
    with pytest.raises(InvalidInput):
        ledger.award(village.id, h.id, 5, "  ", None)
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0


def test_another_villages_household_is_not_found(village):
    other = factories.village("other", "别村")
    h = factories.household(other)
    from app.errors import NotFound

    with pytest.raises(NotFound):
        ledger.award(village.id, h.id, 5, "x", None)


def test_verify_names_an_entry_edited_by_hand(village):
    h = factories.household(village)
    for _ in range(3):
        ledger.award(village.id, h.id, 10, "清洁日", None)
    second = db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()[1]
    db.session.execute(text("UPDATE ledger_entry SET points = 99 WHERE id = :i"), {"i": second.id})
    db.session.commit()
    problems = verify()
    assert problems and problems[0].entry_id == second.id


def test_concurrent_redemptions_never_overspend(app, village):
    h = factories.household(village, opening=100)
    vid, hid = village.id, h.id  # plain ints: ORM objects belong to this thread's session
    results = []

    def spend():
        with app.app_context():
            try:
                ledger.redeem(vid, hid, 30, "并发兑换", None)
                results.append("ok")
            except InsufficientPoints:
                results.append("refused")
            except Exception as e:  # noqa: BLE001 - reported in the assertion below
                results.append(repr(e))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 5, results
    assert balance(hid) == 10
    assert verify() == []
