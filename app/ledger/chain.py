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

    from ..extensions import db
    from ..households.models import Household
    from ..villages.models import GENESIS_HASH, Village
    from .models import LedgerEntry

    problems: list[Problem] = []
    villages = db.session.scalars(
        select(Village).where(Village.code == village_code)
        if village_code
        else select(Village).order_by(Village.id)
    ).all()
    for village in villages:
        prev, expected_seq, balances = GENESIS_HASH, 1, {}
        rows = db.session.execute(
            select(LedgerEntry)
            .where(LedgerEntry.village_id == village.id)
            .order_by(LedgerEntry.seq)
            .execution_options(yield_per=1000)
        ).scalars()
        bad = None
        for e in rows:
            running = balances.get(e.household_id, 0) + e.points
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
    return problems


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
