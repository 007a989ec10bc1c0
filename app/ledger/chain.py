"""The hash chain over a village's ledger entries, and its verification.

Each entry's hash covers its own fields and the previous entry's hash, so editing, deleting or
reordering any past entry changes every hash after it.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime


def entry_hash(
    *,
    prev_hash: str,
    village_id: int,
    seq: int,
    household_id: int,
    kind: str,
    points: int,
    balance_after: int,
    reason: str,
    ref: str,
    key: str | None,
    reverses_id: int | None,
    created_by_id: int | None,
    created_at: datetime,
) -> str:
    fields = [
        prev_hash,
        str(village_id),
        str(seq),
        str(household_id),
        kind,
        str(points),
        str(balance_after),
        reason,
        ref,
        key or "",
        "" if reverses_id is None else str(reverses_id),
        "" if created_by_id is None else str(created_by_id),
        created_at.isoformat(timespec="microseconds"),
    ]
    # A unit separator cannot occur in our text fields, so no two field lists share an encoding.
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def hash_of(entry) -> str:
    return entry_hash(
        prev_hash=entry.prev_hash,
        village_id=entry.village_id,
        seq=entry.seq,
        household_id=entry.household_id,
        kind=entry.kind,
        points=entry.points,
        balance_after=entry.balance_after,
        reason=entry.reason,
        ref=entry.ref,
        key=entry.key,
        reverses_id=entry.reverses_id,
        created_by_id=entry.created_by_id,
        created_at=entry.created_at,
    )


@dataclass
class Problem:
    village_code: str
    entry_id: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"entry id={self.entry_id} seq={self.seq}" if self.entry_id else "village"
        return f"{self.village_code}: {where}: {self.message}"


def verify(village_code: str | None = None) -> list[Problem]:
    """Recompute every chain and every balance; return the problems, first bad entry first.

    Streams the entries in chain order, so memory holds one balance per household, not the ledger.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from ..extensions import db
    from ..households.models import Household
    from ..villages.models import GENESIS_HASH, Village
    from .models import HouseholdYear, LedgerEntry
    from .services import EARNING, local_year

    original = aliased(LedgerEntry)

    problems: list[Problem] = []
    villages = db.session.scalars(
        select(Village).where(Village.code == village_code)
        if village_code
        else select(Village).order_by(Village.id)
    ).all()
    for village in villages:
        prev, expected_seq, balances, earned = GENESIS_HASH, 1, {}, {}
        rows = db.session.execute(
            select(LedgerEntry, original.kind)
            .outerjoin(original, original.id == LedgerEntry.reverses_id)
            .where(LedgerEntry.village_id == village.id)
            .order_by(LedgerEntry.seq)
            .execution_options(yield_per=1000)
        )
        bad = None
        for e, reversed_kind in rows:
            running = balances.get(e.household_id, 0) + e.points
            if e.kind in EARNING or reversed_kind in EARNING:
                year_key = (e.household_id, local_year(e.created_at))
                earned[year_key] = earned.get(year_key, 0) + e.points
            balances[e.household_id] = running
            if e.seq != expected_seq:
                bad = f"sequence gap: expected seq {expected_seq}"
            elif e.prev_hash != prev:
                bad = "does not follow the previous entry's hash"
            elif hash_of(e) != e.hash:
                bad = "hash does not match its fields (edited?)"
            elif e.balance_after != running:
                bad = f"balance_after {e.balance_after} but the entries sum to {running}"
            if bad:
                problems.append(Problem(village.code, e.id, e.seq, bad))
                break
            prev, expected_seq = e.hash, expected_seq + 1
        if bad:
            continue
        if village.ledger_seq != expected_seq - 1 or village.ledger_head != prev:
            problems.append(
                Problem(
                    village.code,
                    None,
                    None,
                    f"chain head {village.ledger_seq}:{village.ledger_head[:12]} "
                    f"but the entries end at {expected_seq - 1}:{prev[:12]}",
                )
            )
            continue
        for hid, number, balance in db.session.execute(
            select(Household.id, Household.number, Household.balance).where(
                Household.village_id == village.id
            )
        ):
            if balance != balances.get(hid, 0):
                problems.append(
                    Problem(
                        village.code,
                        None,
                        None,
                        f"household {number}: balance {balance} but its entries "
                        f"sum to {balances.get(hid, 0)}",
                    )
                )
                break
        # Points earned per year (stars and rank) must be what the entries say, too.
        stored = {
            (hid, year): value
            for hid, year, value in db.session.execute(
                select(HouseholdYear.household_id, HouseholdYear.year, HouseholdYear.earned).where(
                    HouseholdYear.village_id == village.id
                )
            )
        }
        for key in sorted(set(stored) | set(earned)):
            if stored.get(key, 0) != earned.get(key, 0):
                problems.append(
                    Problem(
                        village.code,
                        None,
                        None,
                        f"household id={key[0]} year {key[1]}: points earned "
                        f"{stored.get(key, 0)} but its entries sum to {earned.get(key, 0)}",
                    )
                )
                break
    return problems


# A chain head written down is checked by its count and the first characters of its hash. With
# 12 hex characters (48 bits) forging an edit whose hash starts the same takes ~2^47 tries of
# SHA-256 - years of a PC's time; with 6 it took 41 s. So fewer are refused, with why.
MIN_HEAD_HEX = 12
MAX_SEQ = 2**63 - 1


def parse_head(text: str) -> tuple[int, str] | None:
    """A chain head as written down, "count:hash" (at least MIN_HEAD_HEX hex characters of the
    hash); None when it is not that shape."""
    count, sep, short = (text or "").strip().replace("：", ":").partition(":")
    count, short = count.strip(), short.strip().lower()
    if not sep or not count.isascii() or not count.isdigit() or len(count) > 19:
        return None
    if int(count) > MAX_SEQ or not MIN_HEAD_HEX <= len(short) <= 64:
        return None
    if any(c not in "0123456789abcdef" for c in short):
        return None
    return int(count), short


def head_is_in_chain(village_id: int, count: int, short_hash: str) -> bool:
    """Whether a chain head someone wrote down (entry count and the start of its hash) is still
    part of today's chain. Run `verify` too: this only compares the one entry."""
    from sqlalchemy import select

    from ..extensions import db
    from .models import LedgerEntry

    if count == 0:
        return True
    h = db.session.scalar(
        select(LedgerEntry.hash).where(
            LedgerEntry.village_id == village_id, LedgerEntry.seq == count
        )
    )
    return bool(h and short_hash and h.startswith(short_hash.lower()))
