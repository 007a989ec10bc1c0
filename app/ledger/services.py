"""The only writer of ledger entries and household balances.

Every function takes ids and values (never `request` or `current_user`), runs in one transaction
(joining the caller's when nested) and keeps these rules:

- every balance change is an entry; entries are never updated or deleted;
- `household.balance` equals the sum of its entries and each entry stores `balance_after`;
- a redemption never takes a balance below zero (a deduction decided by a meeting may), except
  an offline one honoured at sync, by at most the overdraft its caller allows (`overdraft`);
- an entry with a `key` is recorded once per village: the same key again returns the first entry;
- entries are hash-chained per village (see chain.py).

Concurrency: the first write of a transaction locks the village's chain head (SELECT ... FOR UPDATE
on PostgreSQL; on SQLite the transaction began with BEGIN IMMEDIATE and holds the write lock),
once: later writes of the same transaction reuse it. The balance changes by a conditional UPDATE
that also checks the floor, so a check and its write can never interleave with another writer.
The writes are plain SQL statements, not ORM flushes, so the lock is held for as few statements
as the rules need (see `post_locked`). On PostgreSQL a counter redemption goes further
(`prepare_post`, `send_post`): one statement checks and writes everything and the server hashes
the entry, so its transaction is sent whole with the COMMIT and no answer is awaited under the
lock.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, event, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..database import (
    RELEASED,
    RELEASED_SERVER,
    Pipe,
    Sent,
    lock_log_on,
    monotonic_ms,
    report_lock_hold,
    transaction,
    utcnow,
)
from ..errors import AlreadyReversed, HouseholdArchived, InsufficientPoints, InvalidInput, NotFound
from ..extensions import db
from ..households.models import Household
from ..villages.models import Village
from .chain import entry_hash, hash_parts
from .models import HouseholdYear, LedgerEntry

MAX_POINTS = 1_000_000
# Kinds that count as points *earned* (star rating, rank); redemptions and opening balances don't.
EARNING = ("award", "deduct", "adjust")
LOCAL_TZ = timedelta(hours=8)  # a village's year starts at midnight China time
RANK_LOCK_SPACE = 7301  # pg_advisory_xact_lock(space, village): one ranking per village at a time
_HEADS = "ledger_heads"  # session.info: {village_id: [seq, hash, locked_at_ms, unread, ...]}

_entry = LedgerEntry.__table__
_household = Household.__table__
_village = Village.__table__

logger = logging.getLogger(__name__)


def local_year(at: datetime) -> int:
    return (at + LOCAL_TZ).year


@dataclass(frozen=True)
class Posted:
    """An entry as written: what callers need, without loading it back."""

    id: int
    village_id: int
    seq: int
    household_id: int
    kind: str
    points: int
    balance_after: int
    key: str | None
    reverses_id: int | None
    created_at: datetime
    hash: str


# ---------------------------------------------------------------- the lock


# The statements of the locked path are built once: building one per call (and its cache key)
# cost more than running it.
_LOCK_HEAD = (
    select(_village.c.ledger_seq, _village.c.ledger_head)
    .where(_village.c.id == bindparam("village_id"))
    .with_for_update()
)
_MOVE_HEAD = (
    update(_village)
    .where(_village.c.id == bindparam("v_id"))
    .values(ledger_seq=bindparam("v_seq"), ledger_head=bindparam("v_head"))
)
_INSERT_ENTRY = insert(_entry).returning(_entry.c.id)
_SERVER_CLOCK = text("SELECT clock_timestamp()")
_BALANCE: dict[tuple[bool, bool], object] = {}


def _balance_statement(floor_at_zero: bool, only_active: bool):
    """UPDATE household SET balance = balance + :points WHERE it is this village's [and the
    result is not below :floor (0, or minus an allowed overdraft)] [and it is active]
    RETURNING balance."""
    key = (floor_at_zero, only_active)
    if key not in _BALANCE:
        conditions = [
            _household.c.id == bindparam("h_id"),
            _household.c.village_id == bindparam("h_village"),
        ]
        if floor_at_zero:
            conditions.append(_household.c.balance + bindparam("h_points") >= bindparam("h_floor"))
        if only_active:
            conditions.append(_household.c.status == "active")
        _BALANCE[key] = (
            update(_household)
            .where(*conditions)
            .values(balance=_household.c.balance + bindparam("h_points"))
            .returning(_household.c.balance)
        )
    return _BALANCE[key]


def queue_lock(pipe: Pipe, village_id: int) -> None:
    """Send the lock of the village's chain head through `pipe` without waiting for it (unless
    this transaction holds it already): statements sent after it run under it, and
    `lock_head` reads it when the head is needed."""
    heads = db.session.info.setdefault(_HEADS, {})
    if village_id not in heads:
        # [seq, hash, lock sent at (ms), the lock's answer while it is unread, answer read at,
        #  the server's clock once it was granted (only while the hold is logged)]
        sent_at = monotonic_ms()
        sent = pipe.run(_LOCK_HEAD, {"village_id": village_id})
        granted = None
        if pipe.postgresql and lock_log_on():
            granted = pipe.run(_SERVER_CLOCK)  # runs once the lock is taken
        heads[village_id] = [None, None, sent_at, sent, None, granted]


def lock_head(village_id: int) -> list:
    """Lock the village's chain head for the rest of the transaction and return it as
    [seq, hash, ...]; a second call in the same transaction returns the same list without
    asking the database again."""
    heads = db.session.info.setdefault(_HEADS, {})
    if village_id not in heads:
        queue_lock(Pipe(), village_id)
    head = heads[village_id]
    if head[0] is None and head[3] is None:
        raise RuntimeError("send_post moved the head: nothing may post after it")
    if head[3] is not None:
        row = head[3].first()
        head[3], head[4] = None, monotonic_ms()
        if row is None:
            heads.pop(village_id)
            raise NotFound()
        head[0], head[1] = row[0], row[1]
    return head


def lock_village(village_id: int) -> Village:
    """Take the village's ledger lock (once per transaction) and return the village, for a
    service that reads its settings under the lock."""
    lock_head(village_id)
    village = db.session.get(Village, village_id, populate_existing=True)
    if village is None:
        raise NotFound()
    return village


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction: its locks are gone
        heads = session.info.pop(_HEADS, None)
        released = session.info.pop(RELEASED, None)
        released_server = _server_clock(session.info.pop(RELEASED_SERVER, None))
        for village_id, head in (heads or {}).items():
            try:
                granted_server = _server_clock(head[5])
                held = None
                if granted_server is not None and released_server is not None:
                    held = (released_server - granted_server).total_seconds() * 1000
                report_lock_hold(
                    village_id, head[2], _granted_ms(head, granted_server), released, held
                )
            except Exception:  # noqa: BLE001 - measuring must never be what fails a request
                logger.exception("ledger lock hold not logged")


def _server_clock(sent: Sent | None) -> datetime | None:
    """The server's clock read by a `SELECT clock_timestamp()` sent while the hold is logged
    (PostgreSQL); None when nothing was sent or the transaction failed before it ran."""
    if sent is None:
        return None
    try:
        return sent.scalar()
    except Exception:  # noqa: BLE001 - an aborted transaction: nothing to report
        return None


def _granted_ms(head: list, granted_server: datetime | None) -> float | None:
    """When the lock was granted, on our monotonic clock: from the server's clock read just
    after it (PostgreSQL, while logged), else when its answer was read (None: never read)."""
    if granted_server is not None:
        return monotonic_ms() - (time.time() - granted_server.timestamp()) * 1000
    return head[4]


def expire_columns(model, ident: int, *attrs: str) -> None:
    """A plain SQL write changed these columns: an ORM copy loaded earlier must reload them."""
    obj = db.session.identity_map.get(db.session.identity_key(model, ident))
    if obj is not None:
        db.session.expire(obj, list(attrs))


# ---------------------------------------------------------------- writing an entry


def _check_points(points: int) -> None:
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < abs(points) <= MAX_POINTS:
        raise InvalidInput(
            _l("Points must be a whole number between 1 and %(max)s."), max=MAX_POINTS
        )


def _by_key(village_id: int, key: str) -> LedgerEntry | None:
    return db.session.execute(
        select(LedgerEntry).where(LedgerEntry.village_id == village_id, LedgerEntry.key == key)
    ).scalar_one_or_none()


def _posted(entry: LedgerEntry) -> Posted:
    return Posted(
        id=entry.id,
        village_id=entry.village_id,
        seq=entry.seq,
        household_id=entry.household_id,
        kind=entry.kind,
        points=entry.points,
        balance_after=entry.balance_after,
        key=entry.key,
        reverses_id=entry.reverses_id,
        created_at=entry.created_at,
        hash=entry.hash,
    )


@dataclass
class Pending:
    """A posting whose balance UPDATE was sent (see `begin_post`), its entry not yet written."""

    village_id: int
    household_id: int
    points: int
    only_active: bool
    balance: Sent


def begin_post(
    pipe: Pipe,
    village_id: int,
    household_id: int,
    points: int,
    *,
    floor_at_zero: bool = False,
    only_active: bool = False,
    overdraft: int = 0,
) -> Pending:
    """The first half of `post_locked`, sent without waiting: the village's lock (unless held)
    and the balance's conditional UPDATE. A caller may send its own checks after it and read
    every answer at once; `end_post` writes the entry."""
    queue_lock(pipe, village_id)
    params = {"h_id": household_id, "h_village": village_id, "h_points": points}
    if floor_at_zero:
        params["h_floor"] = -max(0, int(overdraft))
    sent = pipe.run(_balance_statement(floor_at_zero, only_active), params)
    return Pending(village_id, household_id, points, only_active, sent)


def end_post(
    pipe: Pipe,
    pending: Pending,
    kind: str,
    *,
    reason: str,
    actor_id: int | None,
    key: str | None = None,
    ref: str = "",
    reverses_id: int | None = None,
    earning: bool = False,
    at: datetime | None = None,
) -> Posted:
    """The second half of `post_locked`: read the new balance (raising InsufficientPoints,
    HouseholdArchived or NotFound if the UPDATE was refused), then send the entry with its chain
    hash and the head's move. The entry's id is drawn by its insert, under the lock: a
    village's entries' ids follow their chain order (`verify` relies on it)."""
    village_id, household_id, points = pending.village_id, pending.household_id, pending.points
    head = lock_head(village_id)
    row = pending.balance.first()
    if row is None:
        _why_refused(pipe, village_id, household_id, points, pending.only_active)
    balance_after = row[0]
    seq = head[0] + 1
    fields = dict(
        village_id=village_id,
        seq=seq,
        household_id=household_id,
        kind=kind,
        points=points,
        balance_after=balance_after,
        reason=reason[:300],
        ref=ref,
        key=key,
        reverses_id=reverses_id,
        created_by_id=actor_id,
        created_at=at or utcnow(),
    )
    digest = entry_hash(prev_hash=head[1], **fields)
    values = {"prev_hash": head[1], "hash": digest, **fields}
    entry_id = pipe.run(_INSERT_ENTRY, values).scalar()
    if earning or kind in EARNING:
        _add_earned(pipe, village_id, household_id, local_year(fields["created_at"]), points)
    pipe.run(_MOVE_HEAD, {"v_id": village_id, "v_seq": seq, "v_head": digest})
    head[0], head[1] = seq, digest
    expire_columns(Household, household_id, "balance")
    expire_columns(Village, village_id, "ledger_seq", "ledger_head")
    return Posted(
        id=entry_id,
        village_id=village_id,
        seq=seq,
        household_id=household_id,
        kind=kind,
        points=points,
        balance_after=balance_after,
        key=key,
        reverses_id=reverses_id,
        created_at=fields["created_at"],
        hash=digest,
    )


_AT_ONCE: dict[tuple, object] = {}


def _at_once_statement(
    guards: tuple[str, ...], condition: str, only_active: bool, followers: tuple[str, ...]
):
    """The posting as one PostgreSQL statement (built once per shape): the caller's guards
    (data-modifying CTEs), the balance's conditional UPDATE (which may also require the
    caller's `condition`), the entry hashed by the server from the head it reads, the caller's
    followers (CTEs that may read the entry, e), the head's move. With the UPDATE refused (or
    no such village) the entry misses its balance, hash (or seq): NOT NULL fails."""
    shape = (guards, condition, only_active, followers)
    if shape not in _AT_ONCE:
        where = ["id = :l_h", "village_id = :l_v", "balance + :l_points >= 0"]
        where += ["status = 'active'"] if only_active else []
        where += [condition] if condition else []
        text_hash = (
            "encode(sha256(convert_to(v.prev || CAST(:l_a AS TEXT) || v.seq"
            " || CAST(:l_b AS TEXT) || (SELECT balance FROM b) || CAST(:l_c AS TEXT),"
            " 'UTF8')), 'hex')"
        )
        _AT_ONCE[shape] = text(
            "WITH "
            + "".join(g + ", " for g in guards)
            + "b AS (UPDATE household SET balance = balance + :l_points WHERE "
            + " AND ".join(where)
            + " RETURNING balance), "
            "v AS (SELECT ledger_seq + 1 AS seq, ledger_head AS prev FROM village"
            " WHERE id = :l_v), "
            "e AS (INSERT INTO ledger_entry (village_id, seq, household_id, kind, points,"
            " balance_after, reason, ref, key, reverses_id, created_by_id, created_at,"
            " prev_hash, hash) SELECT CAST(:l_v AS INTEGER), v.seq,"
            " CAST(:l_h AS INTEGER), CAST(:l_kind AS TEXT), CAST(:l_points AS INTEGER),"
            " (SELECT balance FROM b), CAST(:l_reason AS TEXT), CAST(:l_ref AS TEXT),"
            " CAST(:l_key AS TEXT), NULL, CAST(:l_actor AS INTEGER), CAST(:l_at AS TIMESTAMP),"
            " v.prev, " + text_hash + " FROM (SELECT 1) AS one LEFT JOIN v ON TRUE"
            " RETURNING id, seq, hash, balance_after)"
            + "".join(", " + f for f in followers)
            + " UPDATE village SET ledger_seq = e.seq, ledger_head = e.hash FROM e"
            " WHERE village.id = :l_v RETURNING e.balance_after, e.id, e.seq, e.hash"
        )
    return _AT_ONCE[shape]


@dataclass(frozen=True)
class OnePost:
    """A posting made ready for `send_post` before the lock: its statement and values."""

    village_id: int
    household_id: int
    statement: object
    values: dict


def prepare_post(
    village_id: int,
    household_id: int,
    points: int,
    kind: str,
    *,
    reason: str,
    actor_id: int | None,
    key: str,
    ref: str,
    at: datetime,
    only_active: bool = False,
    guards: tuple[str, ...] = (),
    condition: str = "",
    followers: tuple[str, ...] = (),
    params: dict | None = None,
) -> OnePost:
    """PostgreSQL: the whole posting as one statement, to send with `send_post` under the lock.
    The balance moves by its conditional UPDATE (never below zero; `only_active`), the entry
    gets its chain hash from the server (`chain.hash_parts`: the same bytes as `entry_hash`),
    the head moves on. The caller may add `guards` (CTEs named other than b, v, e, with their
    `params`) and a `condition` on the household's row that the UPDATE must also meet; any of
    them failing leaves the entry without a balance, and the NOT NULL violation (`refused`)
    aborts the transaction: nothing is written, and the caller finds out why by the path that
    waits (`begin_post`). `followers`: CTEs that write what goes with the entry, reading it as
    e (id, seq, hash, balance_after). Everything is worked out here, so that nothing but
    sending is left for while the lock is held. Not for kinds that count as earned."""
    if kind in EARNING:
        raise ValueError("prepare_post does not count points earned")
    reason = reason[:300]
    a, b, c = hash_parts(
        village_id=village_id,
        household_id=household_id,
        kind=kind,
        points=points,
        reason=reason,
        ref=ref,
        key=key,
        reverses_id=None,
        created_by_id=actor_id,
        created_at=at,
    )
    values = {
        "l_v": village_id,
        "l_h": household_id,
        "l_kind": kind,
        "l_points": points,
        "l_reason": reason,
        "l_ref": ref,
        "l_key": key,
        "l_actor": actor_id,
        "l_at": at,
        "l_a": a,
        "l_b": b,
        "l_c": c,
        **(params or {}),
    }
    statement = _at_once_statement(guards, condition, only_active, followers)
    return OnePost(village_id, household_id, statement, values)


def send_post(pipe: Pipe, post: OnePost) -> Sent:
    """Send a prepared posting in `transaction(pipelined=True)` after `queue_lock`, nothing
    waited for, so the caller can send its COMMIT with it and hold the lock for one round trip.
    Its answer, read after the commit: (balance_after, entry id, seq, hash). The entry's id is
    drawn by the insert, under the lock, as `end_post` does."""
    sent = pipe.run(post.statement, post.values)
    head = db.session.info[_HEADS][post.village_id]  # queue_lock was sent before
    head[0] = head[1] = head[3] = None  # the server moves the head: unknown here until commit
    return sent


def forget_posted(post: OnePost) -> None:
    """After the commit: ORM copies of what the statement changed read it again."""
    expire_columns(Household, post.household_id, "balance")
    expire_columns(Village, post.village_id, "ledger_seq", "ledger_head")


def refused(error: Exception) -> bool:
    """Whether a failed `send_post` transaction failed because its UPDATE or a guard refused
    (its entry had no balance), not for any other reason."""
    orig = getattr(error, "orig", None)
    diag = getattr(orig, "diag", None)
    return (
        getattr(orig, "sqlstate", None) == "23502"
        and diag is not None
        and diag.table_name == "ledger_entry"
    )


def post_locked(
    village_id: int,
    household_id: int,
    kind: str,
    points: int,
    *,
    reason: str,
    actor_id: int | None,
    key: str | None = None,
    ref: str = "",
    reverses_id: int | None = None,
    earning: bool = False,
    floor_at_zero: bool = False,
    only_active: bool = False,
    at: datetime | None = None,
    overdraft: int = 0,
) -> Posted:
    """Append one entry under the village's lock (taken here if the transaction has not yet):
    the balance moves by a conditional UPDATE (refused below zero with `floor_at_zero` - or
    below minus `overdraft`, for an offline redemption honoured at sync -, for an archived
    household with `only_active`), the entry is inserted with its chain hash and the head moves
    on: three statements. The caller checks the key, if any, and validates the points and the
    reason."""
    pipe = Pipe()
    pending = begin_post(
        pipe,
        village_id,
        household_id,
        points,
        floor_at_zero=floor_at_zero,
        only_active=only_active,
        overdraft=overdraft,
    )
    return end_post(
        pipe,
        pending,
        kind,
        reason=reason,
        actor_id=actor_id,
        key=key,
        ref=ref,
        reverses_id=reverses_id,
        earning=earning,
        at=at,
    )


def _why_refused(pipe: Pipe, village_id: int, household_id: int, points: int, only_active: bool):
    """The conditional UPDATE changed nothing: say why (a rare path, so one more read)."""
    row = pipe.run(_WHY_REFUSED, {"h_id": household_id, "h_village": village_id}).first()
    if row is None:
        raise NotFound()
    if only_active and row[1] != "active":
        raise HouseholdArchived()
    raise InsufficientPoints(balance=row[0], needed=-points)


def _add_earned(pipe: Pipe, village_id: int, household_id: int, year: int, points: int) -> None:
    """Points earned in the year, kept beside the entry (stars and rank read it), one upsert."""
    pipe.run(
        _ADD_EARNED[pipe.postgresql],
        {"village_id": village_id, "household_id": household_id, "year": year, "earned": points},
    )


def _earned_upsert(upsert):
    table = HouseholdYear.__table__
    stmt = upsert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.household_id, table.c.year],
        set_={"earned": table.c.earned + stmt.excluded.earned},
    )


_ADD_EARNED = {True: _earned_upsert(pg_insert), False: _earned_upsert(sqlite_insert)}
_WHY_REFUSED = select(_household.c.balance, _household.c.status).where(
    _household.c.id == bindparam("h_id"), _household.c.village_id == bindparam("h_village")
)


def _append(
    village_id: int,
    household_id: int,
    kind: str,
    points: int,
    *,
    reason: str,
    actor_id: int | None,
    key: str | None = None,
    ref: str = "",
    reverses_id: int | None = None,
    earning: bool = False,
    floor_at_zero: bool = False,
    only_active: bool = False,
    at: datetime | None = None,
) -> Posted:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("A reason is required."))
    with transaction():
        lock_head(village_id)
        if key is not None:
            existing = _by_key(village_id, key)
            if existing is not None:
                return _posted(existing)
        return post_locked(
            village_id,
            household_id,
            kind,
            points,
            reason=reason,
            actor_id=actor_id,
            key=key,
            ref=ref,
            reverses_id=reverses_id,
            earning=earning,
            floor_at_zero=floor_at_zero,
            only_active=only_active,
            at=at,
        )


def _positive(points: int) -> None:
    _check_points(points)
    if points < 0:
        raise InvalidInput(_l("Give the points as a positive number."))


# ---------------------------------------------------------------- use cases


def award(
    village_id: int,
    household_id: int,
    points: int,
    reason: str,
    actor_id: int | None,
    *,
    key: str | None = None,
    ref: str = "",
    at: datetime | None = None,
) -> Posted:
    """Add `points` (given positive) for a decided award."""
    _positive(points)
    return _append(
        village_id,
        household_id,
        "award",
        points,
        reason=reason,
        actor_id=actor_id,
        key=key,
        ref=ref,
        at=at,
    )


def deduct(
    village_id: int,
    household_id: int,
    points: int,
    reason: str,
    actor_id: int | None,
    *,
    key: str | None = None,
    ref: str = "",
    at: datetime | None = None,
) -> Posted:
    """Take `points` (given positive) away for a decided deduction; may go below zero."""
    _positive(points)
    return _append(
        village_id,
        household_id,
        "deduct",
        -points,
        reason=reason,
        actor_id=actor_id,
        key=key,
        ref=ref,
        at=at,
    )


def redeem(
    village_id: int,
    household_id: int,
    points: int,
    reason: str,
    actor_id: int | None,
    *,
    key: str | None = None,
    ref: str = "",
    at: datetime | None = None,
) -> Posted:
    """Spend `points` (given positive). Raises InsufficientPoints rather than go below zero,
    HouseholdArchived for an archived household."""
    _positive(points)
    return _append(
        village_id,
        household_id,
        "redeem",
        -points,
        reason=reason,
        actor_id=actor_id,
        key=key,
        ref=ref,
        floor_at_zero=True,
        only_active=True,
        at=at,
    )


def adjust(
    village_id: int,
    household_id: int,
    points: int,
    reason: str,
    actor_id: int,
    *,
    key: str | None = None,
    ref: str = "",
) -> Posted:
    """A village admin's direct correction (signed), always with a reason and an audit record."""
    from ..audit import record

    _check_points(points)
    with transaction():
        entry = _append(
            village_id,
            household_id,
            "adjust",
            points,
            reason=reason,
            actor_id=actor_id,
            key=key,
            ref=ref,
        )
        record(
            village_id,
            actor_id,
            "ledger.adjust",
            f"household:{household_id}",
            f"{points:+d} {reason}",
        )
        return entry


def open_balance(
    village_id: int,
    household_id: int,
    points: int,
    actor_id: int | None,
    reason: str = "期初积分",
    *,
    at: datetime | None = None,
) -> Posted:
    """The balance carried over from the paper ledger: at most one per household."""
    _check_points(points)
    return _append(
        village_id,
        household_id,
        "opening",
        points,
        reason=reason,
        actor_id=actor_id,
        key=f"opening:{household_id}",
        at=at,
    )


def reverse(
    village_id: int,
    entry_id: int,
    reason: str,
    actor_id: int | None,
    *,
    floor_at_zero: bool = False,
) -> Posted:
    """Post the opposite of an entry, pointing at it. An entry is reversed at most once; a
    reversal itself cannot be reversed. `floor_at_zero` refuses a reversal that would take the
    balance below zero (reversing an award already spent)."""
    with transaction():
        lock_head(village_id)
        original = db.session.execute(
            select(
                _entry.c.id, _entry.c.kind, _entry.c.points, _entry.c.household_id, _entry.c.ref
            ).where(_entry.c.id == entry_id, _entry.c.village_id == village_id)
        ).first()
        if original is None:
            raise NotFound()
        if original.kind == "reverse":
            raise InvalidInput(_l("A reversal cannot itself be reversed."))
        already = db.session.execute(
            select(_entry.c.id).where(_entry.c.reverses_id == entry_id)
        ).first()
        if already is not None:
            raise AlreadyReversed()
        return _append(
            village_id,
            original.household_id,
            "reverse",
            -original.points,
            reason=reason,
            actor_id=actor_id,
            ref=original.ref,
            reverses_id=original.id,
            earning=original.kind in EARNING,
            floor_at_zero=floor_at_zero,
        )


# ---------------------------------------------------------------- ranks


def recompute_ranks(village_id: int, now: datetime | None = None) -> int:
    """Rank every active household of the village by points earned this year (none earned is 0,
    a negative year ranks below it), in one statement, replacing the village's ranks in one
    transaction: readers see the old ranks until it commits. Returns how many were ranked."""
    from sqlalchemy import delete, func, literal

    from .models import HouseholdRank

    now = now or utcnow()
    year = local_year(now)
    hy = HouseholdYear.__table__
    earned = func.coalesce(hy.c.earned, 0)
    active = (_household.c.village_id == village_id) & (_household.c.status == "active")
    total = select(func.count()).select_from(_household).where(active).scalar_subquery()
    ranked = (
        select(
            _household.c.id,
            _household.c.village_id,
            literal(year),
            func.rank().over(order_by=earned.desc()),
            total,
            earned,
            literal(now),
        )
        .select_from(
            _household.outerjoin(hy, (hy.c.household_id == _household.c.id) & (hy.c.year == year))
        )
        .where(active)
    )
    table = HouseholdRank.__table__
    with transaction():
        if db.session.get_bind().dialect.name == "postgresql":
            # Two runs at once (the daily job and an admin's, or posting in several threads) would
            # both delete and then both insert the same households: one waits for the other here.
            # SQLite writers are already one at a time.
            db.session.execute(
                text("SELECT pg_advisory_xact_lock(:space, :village)"),
                {"space": RANK_LOCK_SPACE, "village": village_id},
            )
        db.session.execute(delete(table).where(table.c.village_id == village_id))
        db.session.execute(
            insert(table).from_select(
                ["household_id", "village_id", "year", "rank", "of", "earned", "computed_at"],
                ranked,
            )
        )
        return db.session.scalar(
            select(func.count()).select_from(table).where(table.c.village_id == village_id)
        )
