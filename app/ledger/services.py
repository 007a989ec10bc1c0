"""The only writer of ledger entries and household balances.

Every function takes ids and values (never `request` or `current_user`), runs in one transaction
(joining the caller's when nested) and keeps these rules:

- every balance change is an entry; entries are never updated or deleted;
- `household.balance` equals the sum of its entries and each entry stores `balance_after`;
- a redemption never takes a balance below zero (a deduction decided by a meeting may);
- an entry with a `key` is recorded once per village: the same key again returns the first entry;
- entries are hash-chained per village (see chain.py).

Concurrency: each append locks the village row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the
transaction began with BEGIN IMMEDIATE and holds the database's write lock), then reads the
household's balance fresh, so a check and its insert can never interleave with another writer.
"""

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..database import transaction, utcnow
from ..errors import AlreadyReversed, HouseholdArchived, InsufficientPoints, InvalidInput, NotFound
from ..extensions import db
from ..households.models import Household
from ..villages.models import Village
from .chain import entry_hash
from .models import HouseholdYear, LedgerEntry

MAX_POINTS = 1_000_000
# Kinds that count as points *earned* (star rating, rank); redemptions and opening balances don't.
EARNING = ("award", "deduct", "adjust")
LOCAL_TZ = timedelta(hours=8)  # a village's year starts at midnight China time


def local_year(at: datetime) -> int:
    return (at + LOCAL_TZ).year


def lock_village(village_id: int) -> Village:
    """Take the village's ledger lock for the rest of the transaction."""
    village = db.session.execute(
        select(Village)
        .where(Village.id == village_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if village is None:
        raise NotFound()
    return village


def _household(village_id: int, household_id: int) -> Household:
    household = db.session.execute(
        select(Household)
        .where(Household.id == household_id, Household.village_id == village_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if household is None:
        raise NotFound()
    return household


def _by_key(village_id: int, key: str) -> LedgerEntry | None:
    return db.session.execute(
        select(LedgerEntry).where(LedgerEntry.village_id == village_id, LedgerEntry.key == key)
    ).scalar_one_or_none()


def _check_points(points: int) -> None:
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < abs(points) <= MAX_POINTS:
        raise InvalidInput(
            _l("Points must be a whole number between 1 and %(max)s."), max=MAX_POINTS
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
    at: datetime | None = None,
) -> LedgerEntry:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("A reason is required."))
    with transaction():
        village = lock_village(village_id)
        if key is not None:
            existing = _by_key(village_id, key)
            if existing is not None:
                return existing
        household = _household(village_id, household_id)
        balance_after = household.balance + points
        if floor_at_zero and balance_after < 0:
            raise InsufficientPoints(balance=household.balance, needed=-points)
        seq = village.ledger_seq + 1
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
        digest = entry_hash(prev_hash=village.ledger_head, **fields)
        entry = LedgerEntry(prev_hash=village.ledger_head, hash=digest, **fields)
        db.session.add(entry)
        household.balance = balance_after
        if earning or kind in EARNING:
            _add_earned(village_id, household_id, local_year(fields["created_at"]), points)
        village.ledger_seq = seq
        village.ledger_head = digest
        db.session.flush()
        return entry


def _add_earned(village_id: int, household_id: int, year: int, points: int) -> None:
    row = db.session.execute(
        select(HouseholdYear).where(
            HouseholdYear.household_id == household_id, HouseholdYear.year == year
        )
    ).scalar_one_or_none()
    if row is None:
        row = HouseholdYear(village_id=village_id, household_id=household_id, year=year, earned=0)
        db.session.add(row)
    row.earned += points


def _positive(points: int) -> None:
    _check_points(points)
    if points < 0:
        raise InvalidInput(_l("Give the points as a positive number."))


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
) -> LedgerEntry:
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
) -> LedgerEntry:
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
) -> LedgerEntry:
    """Spend `points` (given positive). Raises InsufficientPoints rather than go below zero,
    HouseholdArchived for an archived household."""
    _positive(points)
    with transaction():
        lock_village(village_id)
        if key is not None and (existing := _by_key(village_id, key)) is not None:
            return existing
        if not _household(village_id, household_id).active:
            raise HouseholdArchived()
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
) -> LedgerEntry:
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
) -> LedgerEntry:
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
) -> LedgerEntry:
    """Post the opposite of an entry, pointing at it. An entry is reversed at most once; a
    reversal itself cannot be reversed. `floor_at_zero` refuses a reversal that would take the
    balance below zero (reversing an award already spent)."""
    with transaction():
        lock_village(village_id)
        original = db.session.execute(
            select(LedgerEntry).where(
                LedgerEntry.id == entry_id, LedgerEntry.village_id == village_id
            )
        ).scalar_one_or_none()
        if original is None:
            raise NotFound()
        if original.kind == "reverse":
            raise InvalidInput(_l("A reversal cannot itself be reversed."))
        already = db.session.execute(
            select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry_id)
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
