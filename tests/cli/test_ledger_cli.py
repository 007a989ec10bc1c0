from sqlalchemy import select, text

from app.extensions import db
from app.ledger import services as ledger
from app.ledger.models import LedgerEntry

from .. import factories


def test_demo_loads_once_and_its_ledger_verifies(app, runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "loaded" in first.output
    count = db.session.scalar(select(db.func.count(LedgerEntry.id)))
    assert count > 100
    again = runner.invoke(args=["demo"])
    assert "already there" in again.output
    assert db.session.scalar(select(db.func.count(LedgerEntry.id))) == count
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "ledger OK" in result.output


def test_demo_if_empty_leaves_a_real_install_alone(app, runner, village):
    result = runner.invoke(args=["demo", "--if-empty"])
    assert "not loaded" in result.output
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0


def test_verify_fails_naming_the_entry_edited_by_hand(app, runner, village):
    h = factories.household(village, opening=40)
    ledger.award(village.id, h.id, 10, "清洁日", None)
    ledger.redeem(village.id, h.id, 5, "肥皂", None)
    entry_id = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.kind == "award"))
    db.session.execute(text("UPDATE ledger_entry SET points = 100 WHERE id = :i"), {"i": entry_id})
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"entry id={entry_id}" in result.output


def test_verify_fails_when_a_balance_is_edited_by_hand(app, runner, village):
    h = factories.household(village, opening=40)
    db.session.execute(text("UPDATE household SET balance = 400 WHERE id = :i"), {"i": h.id})
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "balance 400" in result.output


def test_verify_fails_when_an_entry_is_deleted(app, runner, village):
    h = factories.household(village, opening=40)
    for _ in range(3):
        ledger.award(village.id, h.id, 10, "清洁日", None)
    db.session.execute(text("DELETE FROM ledger_entry WHERE seq = 2"))
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "BAD" in result.output


def test_verify_head_says_whether_a_written_down_head_is_still_in_the_chain(app, runner, village):
    h = factories.household(village, opening=40)
    ledger.award(village.id, h.id, 10, "清洁日", None)
    db.session.rollback()
    head = db.session.scalar(select(LedgerEntry.hash).where(LedgerEntry.seq == 2))
    ok = runner.invoke(
        args=["ledger", "verify", "--village", village.code, "--head", f"2:{head[:12]}"]
    )
    assert ok.exit_code == 0 and "part of today's chain" in ok.output
    bad = runner.invoke(
        args=["ledger", "verify", "--village", village.code, "--head", "2:deadbeef0000"]
    )
    assert bad.exit_code == 1


def test_create_admin_makes_a_county_admin_and_a_village_admin(app, runner):
    r1 = runner.invoke(args=["create-admin", "--username", "county", "--password", "longpass1"])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(
        args=[
            "create-admin",
            "--username",
            "lihua",
            "--password",
            "longpass1",
            "--village",
            "xinzhuang",
            "--village-name",
            "新庄村",
        ]
    )
    assert r2.exit_code == 0, r2.output
    from app.auth.models import User

    users = {u.username: u for u in db.session.scalars(select(User))}
    assert users["county"].role == "county_admin" and users["county"].village_id is None
    assert users["lihua"].role == "village_admin" and users["lihua"].village.name == "新庄村"
    short = runner.invoke(args=["create-admin", "--username", "x", "--password", "short"])
    assert short.exit_code == 1 and "Error" in short.output


def _entries(village):
    return db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.village_id == village.id).order_by(LedgerEntry.seq)
    ).all()


def test_verify_walks_only_what_is_new_since_its_last_clean_run(app, runner, village):
    from app.ledger.models import LedgerCheckpoint

    h = factories.household(village, opening=40)
    ledger.award(village.id, h.id, 10, "清洁日", None)
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    checkpoint = db.session.get(LedgerCheckpoint, village.id)
    assert checkpoint.seq == 2 and checkpoint.full_verified_at is not None
    ledger.award(village.id, h.id, 5, "清洁日", None)
    new = _entries(village)[-1]
    db.session.execute(text("UPDATE ledger_entry SET points = 50 WHERE id = :i"), {"i": new.id})
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1 and f"entry id={new.id}" in result.output


def test_an_old_edit_needs_the_full_run_but_a_rewritten_history_shows_at_once(app, runner, village):
    from app.ledger.chain import hash_of

    h = factories.household(village, opening=40)
    for _ in range(3):
        ledger.award(village.id, h.id, 10, "清洁日", None)
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    first = _entries(village)[1]
    db.session.execute(text("UPDATE ledger_entry SET reason = 'x' WHERE id = :i"), {"i": first.id})
    db.session.commit()
    # Not carried through the chain: the quick run does not walk it; the full run names it.
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    result = runner.invoke(args=["ledger", "verify", "--full"])
    assert result.exit_code == 1 and f"entry id={first.id}" in result.output
    # Carried through: every later hash recomputed, and the head too. The quick run sees that
    # the entry it verified last has changed.
    db.session.rollback()
    prev = None
    for e in _entries(village):
        if prev is not None:
            e.prev_hash = prev
        e.hash = hash_of(e)
        prev = e.hash
    village_row = db.session.get(type(village), village.id)
    village_row.ledger_head = prev
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1 and "rewritten" in result.output


def _cross_ids(first_id: int, second_id: int) -> None:
    """Give two entries each other's id, as two redemptions at once could before entry ids
    were drawn under the lock (the later entry in the chain with the lower id)."""
    for old, new in ((first_id, -1), (second_id, first_id), (-1, second_id)):
        db.session.execute(
            text("UPDATE ledger_entry SET id = :new WHERE id = :old"), {"new": new, "old": old}
        )
    db.session.commit()


def test_entries_whose_ids_cross_still_verify_and_an_edited_balance_still_fails(
    app, runner, village
):
    """Each household's last entry is found by id, then, for a household that looks wrong, by
    its place in the chain: ids that cross are no false alarm, on the full run or the run since
    the checkpoint; a balance edited by hand still is one."""
    h = factories.household(village, opening=40)
    first = ledger.award(village.id, h.id, 10, "清洁日", None)
    second = ledger.award(village.id, h.id, 5, "孝老", None)
    _cross_ids(first.id, second.id)
    result = runner.invoke(args=["ledger", "verify", "--full"])
    assert result.exit_code == 0, result.output
    ledger.award(village.id, h.id, 1, "义务巡逻", None)  # continues the crossed pair
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    db.session.execute(text("UPDATE household SET balance = 50 WHERE id = :i"), {"i": h.id})
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "balance 50 but its entries sum to 56" in result.output
