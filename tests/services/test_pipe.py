"""The Pipe: statements of a transaction sent together on PostgreSQL (psycopg's pipeline mode),
one at a time on SQLite, with the same answers, defaults and errors as SQLAlchemy's own."""

import tempfile

import psycopg
import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from app.database import Pipe, transaction, utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.store.models import Item, Redemption, RedemptionLine
from app.store.services import _INSERT_REDEMPTION

from .. import factories
from .test_store import buy, card_code, head_of, make_store


def _row(village, household, **extra):
    return dict(
        village_id=village.id,
        venue_id=extra.pop("venue_id"),
        household_id=household.id,
        resident_id=head_of(household.id).id,
        clerk_id=extra.pop("clerk_id"),
        request_id=extra.pop("request_id"),
        request_hash="x" * 64,
        source="card",
        total=0,
        balance_after=household.balance,
        day=utcnow().date(),
        created_at=utcnow(),
        **extra,
    )


def test_an_insert_through_the_pipe_gets_the_models_defaults(village):
    store = make_store(village)
    household = factories.household(village, opening=10)
    row = _row(village, household, venue_id=store.shop, clerk_id=store.clerk, request_id="r1")
    with transaction(pipelined=True):
        Pipe().run(_INSERT_REDEMPTION, {"id": 77, **row})
    redemption = db.session.get(Redemption, 77)
    assert redemption.overdraft == 0  # a Python-side default, filled in as SQLAlchemy would


def test_a_refused_statement_is_sqlalchemys_error_and_nothing_stays(village):
    store = make_store(village)
    household = factories.household(village, opening=10)
    row = _row(village, household, venue_id=store.shop, clerk_id=store.clerk, request_id="same")
    with transaction():
        Pipe().run(_INSERT_REDEMPTION, {"id": 1, **row})
    with pytest.raises(IntegrityError), transaction(pipelined=True):
        pipe = Pipe()
        pipe.run(_INSERT_REDEMPTION, {"id": 2, **{**row, "request_id": "other"}})
        pipe.run(_INSERT_REDEMPTION, {"id": 3, **row})  # the same request id again
    db.session.rollback()
    assert db.session.scalar(select(func.count(Redemption.id))) == 1


def test_a_redemption_waits_for_postgresql_three_times(village, monkeypatch):
    """The reads before the lock (the request id, settings, household, members, items) are sent
    together: one wait. Everything under the village's lock too: the BEGIN, the lock, the card
    check, the stock, the balance (one wait), then the entry, the head, the redemption, its
    lines and the COMMIT (one more). Waiting for each statement held the lock for ten round
    trips; psycopg's own BEGIN and COMMIT each waited once more."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no network: statements run one by one")
    store = make_store(village)
    household = factories.household(village, opening=100)
    syncs = []
    real_sync = psycopg.Pipeline.sync
    monkeypatch.setattr(psycopg.Pipeline, "sync", lambda self: syncs.append(1) or real_sync(self))
    # The connection as a request has it after the sign-in check; libpq's trace of what it
    # exchanges with the server: each ReadyForQuery ends one wait for the server.
    code = card_code(household.id)
    pgconn = db.session.connection().connection.driver_connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            receipt, created = buy(
                store, code, [{"item_id": store.rice, "qty": 1}, {"item_id": store.oil, "qty": 2}]
            )
        finally:
            pgconn.untrace()
        trace.seek(0)
        waits = [line for line in trace if "\tReadyForQuery" in line]
    assert created and receipt.balance_after == 80
    # The ids, the lock and the checks answer at once; the writes go with the commit.
    assert len(syncs) == 1 and len(waits) == 3
    db.session.rollback()
    assert db.session.scalar(select(func.count(RedemptionLine.id))) == 2
    entry = db.session.get(LedgerEntry, receipt.entry_id)
    assert entry.points == -20 and entry.ref == f"redemption:{receipt.id}"


def test_rows_come_back_as_sqlalchemy_would_give_them(village):
    """A boolean stays a boolean and a date a date on SQLite too (stored there as 1 and text):
    such statements go through SQLAlchemy, the rest straight to the driver."""
    store = make_store(village)
    household = factories.household(village, opening=10)
    row = _row(village, household, venue_id=store.shop, clerk_id=store.clerk, request_id="r2")
    with transaction():
        Pipe().run(_INSERT_REDEMPTION, {"id": 5, **row})
    pipe = Pipe()
    active = pipe.run(select(Item.active).where(Item.id == bindparam("i")), {"i": store.oil})
    assert active.first()[0] is True
    day = pipe.run(select(Redemption.day).where(Redemption.id == bindparam("r")), {"r": 5})
    assert day.scalar() == row["day"]
    total = pipe.run(select(Redemption.total).where(Redemption.id == bindparam("r")), {"r": 5})
    assert total.scalar() == 0 and total.rowcount in (-1, 1)


def _exchanges(work) -> list[str]:
    """What the session's connection sends while `work()` runs: libpq's trace of the messages
    (PostgreSQL only), as 'Query BEGIN', 'Parse ...' lines."""
    pgconn = db.session.connection().connection.driver_connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            work()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return [line.split("\t", 3)[-1].strip() for line in trace if "\tF\t" in line]


def test_reads_outside_a_transaction_autocommit_on_postgresql(village):
    """A read-only request sends no BEGIN and no ROLLBACK: a ROLLBACK made psycopg forget its
    prepared statements (DEALLOCATE ALL), so PostgreSQL parsed every statement again."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's transactions")
    household = factories.household(village, opening=7)
    model, household_id = type(household), household.id
    db.session.commit()
    db.session.close()

    def read():
        for _ in range(6):  # psycopg prepares a statement on its fifth use
            db.session.expire_all()
            assert db.session.get(model, household_id).balance == 7
        db.session.close()  # the end of the request: the connection goes back to the pool

    sent = _exchanges(read)
    assert not [m for m in sent if "BEGIN" in m or "ROLLBACK" in m or "DEALLOCATE" in m], sent
    assert any(m.startswith('Bind\t "" "_pg3_') for m in sent), "the statement was prepared"


def test_a_transaction_reads_again_what_the_request_read_before_it(village):
    """Reads before a service's transaction (autocommit on PostgreSQL) must not leak into it:
    an ORM value read before is read again inside, where the locks are."""
    household = factories.household(village, opening=5)
    db.session.commit()
    seen = db.session.get(type(household), household.id)
    assert seen.balance == 5
    other = db.engine.connect()  # another clerk's redemption, committed meanwhile
    other.execute(
        type(household).__table__.update().where(type(household).__table__.c.id == household.id),
        {"balance": 3},
    )
    other.commit()
    other.close()
    with transaction():
        assert seen.balance == 3
