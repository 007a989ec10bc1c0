"""Ledger invariants over random sequences of operations (hypothesis), on the test database."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from app.errors import AlreadyReversed, InsufficientPoints, InvalidInput
from app.extensions import db
from app.households.models import Household
from app.ledger import services as ledger
from app.ledger.chain import verify
from app.ledger.models import HouseholdYear, LedgerEntry

from .. import factories

OPS = st.lists(
    st.tuples(
        st.sampled_from(["award", "deduct", "redeem", "adjust", "reverse"]),
        st.integers(min_value=0, max_value=2),  # which household
        st.integers(min_value=1, max_value=120),  # points
    ),
    min_size=1,
    max_size=25,
)


def _apply(vid, hids, op, idx, pts, posted):
    hid = hids[idx]
    try:
        if op == "award":
            posted.append(ledger.award(vid, hid, pts, "清洁日", None).id)
        elif op == "deduct":
            posted.append(ledger.deduct(vid, hid, pts, "乱堆乱放", None).id)
        elif op == "redeem":
            posted.append(ledger.redeem(vid, hid, pts, "大米", None).id)
        elif op == "adjust":
            posted.append(ledger.adjust(vid, hid, pts if pts % 2 else -pts, "更正", 1).id)
        elif posted:
            posted.append(ledger.reverse(vid, posted[pts % len(posted)], "更正", None).id)
    except (InsufficientPoints, AlreadyReversed, InvalidInput):
        pass  # refused operations must leave no trace; checked by the invariants below


def _check_invariants(code, hids):
    db.session.rollback()
    for hid in hids:
        h = db.session.get(Household, hid)
        entries = db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.household_id == hid).order_by(LedgerEntry.seq)
        ).all()
        assert h.balance == sum(e.points for e in entries)
        running = 0
        for e in entries:
            running += e.points
            assert e.balance_after == running
            # a redemption never takes the balance below zero
            if e.kind == "redeem":
                assert e.balance_after >= 0
        earned = sum(
            e.points
            for e in entries
            if e.kind in ("award", "deduct", "adjust")
            or (e.kind == "reverse" and db.session.get(LedgerEntry, e.reverses_id).kind != "redeem")
        )
        stored = db.session.scalar(
            select(func.coalesce(func.sum(HouseholdYear.earned), 0)).where(
                HouseholdYear.household_id == hid
            )
        )
        assert stored == earned
    # Examples share the database: each checks its own village's chain.
    assert verify(code) == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_random_operations_keep_every_invariant_and_tampering_shows(app, ops):
    db.session.rollback()
    v = factories.village(f"v{factories.next_id()}", "测试村")
    vid = v.id
    hids = [factories.household(v).id for _ in range(3)]
    posted: list[int] = []
    for op, idx, pts in ops:
        _apply(vid, hids, op, idx, pts, posted)
    _check_invariants(v.code, hids)
    if posted:
        victim = posted[len(posted) // 2]
        db.session.execute(
            text("UPDATE ledger_entry SET reason = 'edited' WHERE id = :i"), {"i": victim}
        )
        db.session.commit()
        problems = verify(v.code, full=True)  # an edit before the last checkpoint: a full run
        assert problems and problems[0].entry_id == victim
