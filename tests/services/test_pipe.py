"""The Pipe: statements of a transaction sent together on PostgreSQL (psycopg's pipeline mode),
one at a time on SQLite, with the same answers, defaults and errors as SQLAlchemy's own."""

import hashlib
import select as select_module
import tempfile
from datetime import datetime

import psycopg
import pytest
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from app.database import Pipe, transaction, utcnow
from app.errors import HouseholdArchived, InsufficientPoints
from app.extensions import db
from app.households.models import Household
from app.households.services import set_status
from app.ledger import services as ledger
from app.ledger.chain import entry_hash, hash_of, hash_parts, verify
from app.ledger.models import LedgerEntry
from app.store import services
from app.store.errors import CardDailyCap, CardReplaced, CodeUnknown, MealLimit, OutOfStock
from app.store.models import Item, PayCode, Redemption, RedemptionLine
from app.store.services import _INSERT_REDEMPTION
from app.villages.models import Village

from .. import factories
from .test_store import buy, card_code, head_of, make_store, pay_code, resident_of


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


def test_a_redemption_waits_for_postgresql_twice(village, monkeypatch):
    """The reads before the lock (the request id, settings, household, members, items, the
    ids) are sent together: one wait. Everything under the village's lock too - the BEGIN, the
    lock, the one statement that checks and writes the stock, the card, the balance, the entry
    and the head, the redemption, its lines and the COMMIT -: one more, and no answer is read
    while the lock is held. Waiting for each statement held the lock for ten round trips."""
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
    # No answer is read in the middle of the locked pipeline: the commit's wait is the only one.
    assert len(syncs) == 0 and len(waits) == 2
    db.session.rollback()
    lines = db.session.scalars(select(RedemptionLine).order_by(RedemptionLine.id)).all()
    assert [(line.item_id, line.qty, line.points) for line in lines] == [
        (store.rice, 1, 10),
        (store.oil, 2, 5),
    ]
    assert all(line.redemption_id == receipt.id and line.slot is None for line in lines)
    red = db.session.get(Redemption, receipt.id)
    assert (red.entry_id, red.balance_after, red.total, red.source) == (
        receipt.entry_id,
        80,
        20,
        "card",
    )
    entry = db.session.get(LedgerEntry, receipt.entry_id)
    assert entry.points == -20 and entry.ref == f"redemption:{receipt.id}"
    assert entry.balance_after == 80 and entry.hash == hash_of(entry)
    assert verify(village.code, full=True) == []


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


def test_the_values_sent_are_sqlalchemys_own(village):
    """The parameters worked out once per statement are those SQLAlchemy's construct_params
    gives on every call: the caller's, the statement's own literals (`status == 'active'`), the
    models' defaults and the dialect's conversions (a datetime as SQLite's text)."""
    from app.database import _Prepared

    now = utcnow()
    statements = [
        (_INSERT_REDEMPTION, {"id": 9, "created_at": now, "day": now.date(), "total": 3}),
        (
            update(Household)
            .where(Household.id == bindparam("h"), Household.status == "active")
            .values(balance=Household.balance + bindparam("p"))
            .returning(Household.balance),
            {"h": 4, "p": -2},
        ),
        (select(Redemption.id).where(Redemption.created_at > bindparam("at")), {"at": now}),
    ]
    dialect = db.session.get_bind().dialect
    for statement, params in statements:
        prepared = _Prepared(statement, dialect, sorted(params))
        assert prepared.given is not None  # the worked-out way, not construct_params
        expected = prepared.compiled.construct_params(params, _check=False)
        got = prepared.values(params)
        for name, _default in prepared.defaults:  # a default's own value (a fresh timestamp)
            expected[name] = got[name]
        for name, process in prepared.processors.items():
            if expected.get(name) is not None and name not in dict(prepared.defaults):
                expected[name] = process(expected[name])
        assert got == expected
    assert "active" in _Prepared(statements[1][0], dialect, ["h", "p"]).fixed.values()


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
    prepared statements (DEALLOCATE ALL), so PostgreSQL parsed every statement again. Nor does
    the pool ping the server at each checkout."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's transactions")
    household = factories.household(village, opening=7)
    model, household_id = type(household), household.id
    db.session.commit()
    db.session.close()

    def read():
        for _ in range(6):  # psycopg prepares a statement on its fifth use
            assert db.session.get(model, household_id).balance == 7
            db.session.close()  # a request's end: the connection goes back to the pool

    sent = _exchanges(read)
    assert not [m for m in sent if "BEGIN" in m or "ROLLBACK" in m or "DEALLOCATE" in m], sent
    assert not [m for m in sent if m.startswith("Query")], "no ping at each checkout"
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


def _deduct(store, household_id, resident_id):
    ledger.deduct(store.village_id, household_id, 95, "罚分", None)


def _off_sale(store, household_id, resident_id):
    with transaction():
        db.session.get(Item, store.rice).active = False


def _stock_counted(store, household_id, resident_id):
    services.correct_stock(store.village_id, store.rice, 0, "盘点", None)


def _card_reissued(store, household_id, resident_id):
    services.reissue_card(store.village_id, household_id, None)


def _cap_reached(store, household_id, resident_id):
    buy(store, card_code(household_id), [{"item_id": store.oil, "qty": 5}])  # 25 of 30


def _archived(store, household_id, resident_id):
    set_status(store.village_id, household_id, "archived", store.clerk)


@pytest.mark.parametrize(
    "race, refusal",
    [
        (_deduct, InsufficientPoints),
        (_off_sale, OutOfStock),
        (_stock_counted, OutOfStock),
        (_card_reissued, CardReplaced),
        (_cap_reached, CardDailyCap),
        (_archived, HouseholdArchived),
    ],
)
def test_what_changed_before_the_lock_is_refused_in_one_go_and_nothing_is_written(
    village, monkeypatch, race, refusal
):
    """The one-statement path reads no answer under the lock, so every rule is a condition of
    its UPDATE. Each rule broken between the reading and the lock: the statement writes
    nothing (not the stock, not the balance, not the entry), the checking path runs once and
    says which rule, and the chain still verifies."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    with transaction():
        db.session.get(Village, village.id).card_daily_cap = 30
    store = make_store(village)
    household = factories.household(village, opening=100)
    resident = head_of(household.id)
    at_once, checking = [], []
    real_at_once, real_checking = services._write_at_once, services._write_checking

    def at_once_after_the_race(*args):
        if at_once:  # the race's own redemption
            return real_at_once(*args)
        at_once.append(None)
        race(store, household.id, resident.id)
        at_once.append(counts())
        receipt = real_at_once(*args)
        at_once.append(counts())
        return receipt

    def counts():
        db.session.rollback()
        return (
            db.session.scalar(select(func.count(LedgerEntry.id))),
            db.session.scalar(select(func.sum(Item.stock))),
            db.session.get(Household, household.id, populate_existing=True).balance,
            db.session.scalar(select(func.count(Redemption.id))),
        )

    monkeypatch.setattr(services, "_write_at_once", at_once_after_the_race)
    monkeypatch.setattr(
        services, "_write_checking", lambda *a: checking.append(1) or real_checking(*a)
    )
    with pytest.raises(refusal):
        buy(store, card_code(household.id), [{"item_id": store.rice, "qty": 1}])
    assert at_once[1] == at_once[2] == counts()  # the refused statement wrote nothing
    assert checking == [1]
    assert verify(village.code, full=True) == []


def test_a_card_spending_exactly_the_cap_goes_in_one_go(village, monkeypatch):
    """The card's daily cap as the statement checks it: reaching it exactly is allowed."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    with transaction():
        db.session.get(Village, village.id).card_daily_cap = 30
    store = make_store(village)
    household = factories.household(village, opening=100)
    checking = []
    real_checking = services._write_checking
    monkeypatch.setattr(
        services, "_write_checking", lambda *a: checking.append(1) or real_checking(*a)
    )
    buy(store, card_code(household.id), [{"item_id": store.oil, "qty": 4}])
    receipt, _ = buy(store, card_code(household.id), [{"item_id": store.rice, "qty": 1}])
    assert receipt.balance_after == 70 and checking == []
    with pytest.raises(CardDailyCap):
        buy(store, card_code(household.id), [{"item_id": store.oil, "qty": 1}])
    assert checking == [1]


def test_a_used_pay_code_is_refused_in_one_go(village, monkeypatch):
    """A pay code used by another counter between the reading and the lock: nothing written,
    and the counter is told the code is unknown (as for any used code)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    store = make_store(village)
    household = factories.household(village, opening=100)
    resident = head_of(household.id)
    code = pay_code(resident.id)
    real_at_once = services._write_at_once

    def used_meanwhile(*args):
        with transaction():
            db.session.execute(update(PayCode).values(used_at=utcnow()))
        return real_at_once(*args)

    monkeypatch.setattr(services, "_write_at_once", used_meanwhile)
    with pytest.raises(CodeUnknown):
        buy(store, code, [{"item_id": store.rice, "qty": 1}])
    db.session.rollback()
    assert db.session.get(Household, household.id).balance == 100
    assert db.session.get(Item, store.rice).stock == 10
    assert db.session.scalar(select(func.count(Redemption.id))) == 0


def test_the_server_hashes_the_same_bytes_as_python():
    """`hash_parts` cut `entry_hash`'s encoding where the database fills in its values."""
    fields = dict(
        village_id=7,
        household_id=12,
        kind="redeem",
        points=-25,
        reason="爱心超市: 大米×2、油×1",
        ref="redemption:3",
        key="redemption:r-1",
        reverses_id=None,
        created_by_id=4,
        created_at=datetime(2026, 11, 27, 12, 0, 0, 5),
    )
    a, b, c = hash_parts(**fields)
    prev = "ab" * 32
    joined = (prev + a + "41" + b + "75" + c).encode()
    # The chain's encoding spelled out: every field, in order, joined by a unit separator.
    spelled = [prev, "7", "41", "12", "redeem", "-25", "75", fields["reason"], "redemption:3"]
    spelled += ["redemption:r-1", "", "4", "2026-11-27T12:00:00.000005"]
    assert joined == "\x1f".join(spelled).encode()
    assert hashlib.sha256(joined).hexdigest() == entry_hash(
        prev_hash=prev, seq=41, balance_after=75, **fields
    )


def test_a_connection_the_server_closed_is_replaced_without_a_ping(village):
    """The pool sends no ping per request on PostgreSQL: a connection whose backend is gone
    (a restart, an administrator's kill) is seen at checkout by what it left on the socket,
    thrown away, and the request runs on a new one."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to close the connection")
    assert db.engine.pool._pre_ping is False
    first = db.session.connection().connection.driver_connection
    pid = first.info.backend_pid
    db.session.remove()  # back to the pool
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url.split("?")[0], autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    for _ in range(100):  # the backend says goodbye asynchronously
        if select_module.select([first.fileno()], [], [], 0.01)[0]:
            break
    assert db.session.scalar(select(func.count(Village.id))) >= 1
    assert db.session.connection().connection.driver_connection.info.backend_pid != pid


def test_meals_go_in_one_go_within_their_limit_and_a_meal_over_it_writes_nothing(
    village, monkeypatch
):
    """The canteen's limits as the statement checks them: per resident, per slot, per day (a
    voided meal not counted: test_store.py's test_voided_meal_does_not_count_towards_the_limit
    runs through it too); the meal over the limit is refused whole by the statement, the
    checking path says which limit, and the other member of the household eats."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    store = make_store(village)
    household = factories.household(village, opening=100)
    head = head_of(household.id)
    other = resident_of(household.id, name="王小红")
    checking = []
    real_checking = services._write_checking
    monkeypatch.setattr(
        services, "_write_checking", lambda *a: checking.append(1) or real_checking(*a)
    )

    def eat(item, qty=1, resident=head):
        return buy(
            store,
            card_code(household.id),
            [{"item_id": item, "qty": qty}],
            venue=store.canteen,
            clerk=store.cook,
            resident_id=resident.id,
        )[0]

    lunch = eat(store.lunch)
    assert lunch.balance_after == 92 and checking == []
    with pytest.raises(MealLimit):
        eat(store.lunch)
    assert checking == [1]
    eat(store.breakfast, qty=2)
    with pytest.raises(MealLimit):
        eat(store.breakfast)
    assert checking == [1, 1]
    eat(store.lunch, resident=other)  # the other member's own limit
    assert checking == [1, 1]
    db.session.rollback()
    assert db.session.get(Household, household.id).balance == 100 - 8 - 6 - 8
    assert db.session.scalar(select(func.count(Redemption.id))) == 3
    assert verify(village.code, full=True) == []
