"""Exact attempt limits shared by every worker: sign-in, card PINs, pay-code lookups, claims.

An attempt is *reserved* before it is evaluated, in one short transaction that locks the counter
rows: if `limit` attempts are already counted in the window, the attempt is refused before any
password is hashed or code looked up. So 12 wrong passwords sent at once evaluate exactly 5, on
SQLite and PostgreSQL alike. An attempt that turns out right gives its reservation back
(`refund`) or clears the counter (`clear`), so only failures use up the budget.

Counters live in the `login_throttle` table (one row per key, e.g. "user:wang", "addr:1.2.3.4",
"pin:42", "clerk:7"). The window is fixed: it starts at the first counted attempt and lasts
`minutes`; when it is over the counter starts again from zero.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..database import transaction, utcnow
from ..extensions import db
from .models import LoginThrottle


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    minutes: int


@dataclass(frozen=True)
class Refused:
    """Why a reservation was refused: the limit that is full, minutes until it frees, and
    whether this refusal is the first of its window (worth one audit record, not thousands)."""

    limit: Limit
    minutes: int
    first: bool


def _insert_missing(keys: list[str], now: datetime) -> None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(
        insert(LoginThrottle)
        .values([{"key": k, "failures": 0, "window_start": now} for k in keys])
        .on_conflict_do_nothing(index_elements=["key"])
    )


def check(limits: list[Limit], now: datetime | None = None) -> Refused | None:
    """Inside the caller's transaction: lock the counters of `limits` (creating them), start
    spent windows afresh, and say which limit is full, if any. Nothing is counted: call
    `count` for a failure. Holding the row locks until the caller commits is what makes a
    check-then-count exact when many workers try at once."""
    now = now or utcnow()
    limits = sorted(limits, key=lambda lim: lim.key)  # one lock order: no deadlocks
    with transaction():
        _insert_missing([lim.key for lim in limits], now)
        rows = _locked_rows(limits)
        refused = None
        for lim in limits:
            row = rows[lim.key]
            end = row.window_start + timedelta(minutes=lim.minutes)
            if end <= now:
                row.failures, row.window_start, row.locked_until = 0, now, None
                end = now + timedelta(minutes=lim.minutes)
            if row.failures >= lim.limit and refused is None:
                first = row.locked_until is None
                row.locked_until = end
                minutes = max(1, int((end - now).total_seconds() // 60) + 1)
                refused = Refused(lim, minutes, first)
        return refused


def count(limits: list[Limit]) -> None:
    """Inside the caller's transaction, after `check`: one more failure on every limit."""
    with transaction():
        for row in _locked_rows(limits).values():
            row.failures += 1


def _locked_rows(limits: list[Limit]) -> dict[str, LoginThrottle]:
    return {
        r.key: r
        for r in db.session.execute(
            select(LoginThrottle)
            .where(LoginThrottle.key.in_([lim.key for lim in limits]))
            .order_by(LoginThrottle.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    }


def reserve(limits: list[Limit], now: datetime | None = None) -> Refused | None:
    """Count one attempt against every limit, all or none, in a transaction of its own (so the
    count stays whatever the attempt's own transaction does). Returns None when the attempt may
    go ahead, else what refused it (nothing is counted then)."""
    with transaction():
        refused = check(limits, now)
        if refused is None:
            count(limits)
        return refused


def refund(limits: list[Limit]) -> None:
    """Give back one reserved attempt (it was not a failure)."""
    with transaction():
        for lim in sorted(limits, key=lambda lim: lim.key):
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == lim.key, LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )


def clear(key: str) -> None:
    """Forget the failures of a key (the right password ends an account's bad streak)."""
    with transaction():
        db.session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(failures=0, locked_until=None)
        )


def failures(key: str) -> int:
    return db.session.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key)) or 0
