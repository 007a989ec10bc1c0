"""The hash chain over a village's ledger entries, and its verification.

Each entry's hash covers its own fields and the previous entry's hash, so editing, deleting or
reordering any past entry changes every hash after it. Python computes it (`entry_hash`), and so
does PostgreSQL for the counter's one-statement posting, over the same bytes (`hash_parts`);
`verify` checks every entry against `entry_hash` whoever computed it.
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
    # A unit separator cannot occur in our text fields, so no two field lists share an encoding.
    a, b, c = hash_parts(
        village_id=village_id,
        household_id=household_id,
        kind=kind,
        points=points,
        reason=reason,
        ref=ref,
        key=key,
        reverses_id=reverses_id,
        created_by_id=created_by_id,
        created_at=created_at,
    )
    return hashlib.sha256(f"{prev_hash}{a}{seq}{b}{balance_after}{c}".encode()).hexdigest()


def hash_parts(
    *,
    village_id: int,
    household_id: int,
    kind: str,
    points: int,
    reason: str,
    ref: str,
    key: str | None,
    reverses_id: int | None,
    created_by_id: int | None,
    created_at: datetime,
) -> tuple[str, str, str]:
    """`entry_hash`'s encoding cut around the three values only the database knows under the
    lock - the previous hash, the seq and the balance after -, for PostgreSQL to hash in the
    statement that writes the entry: the hash is sha256 of
    prev_hash + a + seq + b + balance_after + c, in UTF-8 (the same bytes as `entry_hash`)."""
    a = f"\x1f{village_id}\x1f"
    b = f"\x1f{household_id}\x1f{kind}\x1f{points}\x1f"
    c = "\x1f" + "\x1f".join(
        [
            reason,
            ref,
            key or "",
            "" if reverses_id is None else str(reverses_id),
            "" if created_by_id is None else str(created_by_id),
            created_at.isoformat(timespec="microseconds"),
        ]
    )
    return a, b, c


def hash_of(entry) -> str:  # an ORM entry's hash (tests and tools)
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


def _row_hash(prev: str, row) -> str:
    """entry_hash of a plain row (id, village_id, seq, household_id, kind, points,
    balance_after, reason, ref, key, reverses_id, created_by_id, created_at, ...): the same
    encoding without building a dict per entry, so a million entries verify in seconds."""
    return hashlib.sha256(
        "\x1f".join(
            (
                prev,
                str(row[1]),
                str(row[2]),
                str(row[3]),
                row[4],
                str(row[5]),
                str(row[6]),
                row[7],
                row[8],
                row[9] or "",
                "" if row[10] is None else str(row[10]),
                "" if row[11] is None else str(row[11]),
                row[12].isoformat(timespec="microseconds"),
            )
        ).encode()
    ).hexdigest()


def verify(village_code: str | None = None, *, full: bool = False) -> list[Problem]:
    """Check every village's chain and balances; return the problems, first bad entry first.

    By default only what is new since the village's last verified checkpoint is walked: the
    checkpoint's own entry must still hash to what was verified (so history before it cannot
    have been rewritten consistently), each new entry must follow the one before it, hash to
    its fields and carry the right balance; every household's balance must equal its last
    entry's; points earned per year are recomputed for the households the new entries touched.
    `full=True` walks every entry from the first (and recomputes every year's points earned):
    what catches an edit before the checkpoint that was not carried through the chain. A clean
    run moves the checkpoint to the head.

    Entries stream in chain order as plain rows; memory holds one balance per household.
    """
    from sqlalchemy import select

    from ..extensions import db
    from ..villages.models import Village

    q = select(Village.id, Village.code).order_by(Village.id)
    if village_code:
        q = q.where(Village.code == village_code)
    problems: list[Problem] = []
    for village_id, code in db.session.execute(q).all():
        found = _verify_village(village_id, code, full)
        problems.extend(found)
        db.session.rollback()  # end the read; the next village is read afresh
    return problems


def _verify_village(village_id: int, code: str, full: bool) -> list[Problem]:
    from sqlalchemy import func, select

    from ..database import transaction, utcnow
    from ..extensions import db
    from ..households.models import Household
    from ..villages.models import GENESIS_HASH, Village
    from .models import HouseholdYear, LedgerCheckpoint, LedgerEntry
    from .services import EARNING

    e = LedgerEntry.__table__
    village = db.session.execute(
        select(Village.ledger_seq, Village.ledger_head).where(Village.id == village_id)
    ).one()
    checkpoint = None if full else db.session.get(LedgerCheckpoint, village_id)
    start_seq, prev = 0, GENESIS_HASH
    if checkpoint is not None and checkpoint.seq:
        anchor = db.session.execute(
            select(*_COLUMNS(e)).where(e.c.village_id == village_id, e.c.seq == checkpoint.seq)
        ).first()
        if anchor is None or anchor.hash != checkpoint.hash:
            return [
                Problem(
                    code,
                    anchor.id if anchor else None,
                    checkpoint.seq,
                    "the entry verified last time has changed: history before it was rewritten "
                    "(run `flask ledger verify --full` to find where)",
                )
            ]
        if _row_hash(anchor.prev_hash, anchor) != anchor.hash:
            return [
                Problem(code, anchor.id, anchor.seq, "hash does not match its fields (edited?)")
            ]
        start_seq, prev = checkpoint.seq, checkpoint.hash

    balances: dict[int, int] = {}
    earned: dict[tuple[int, int], int] = {}
    touched_years: set[tuple[int, int]] = set()
    expected_seq = start_seq + 1
    pending_first: dict[int, list] = {}  # household -> [entry id, seq, points, balance_after]
    sha256 = hashlib.sha256
    for row in _stream(village_id, start_seq):
        (eid, vid, seq, hid, kind, points, balance_after, reason, ref, key, rev, by, at) = row[:13]
        if seq != expected_seq:
            return [Problem(code, eid, seq, f"sequence gap: expected seq {expected_seq}")]
        if row[13] != prev:
            return [Problem(code, eid, seq, "does not follow the previous entry's hash")]
        digest = sha256(
            "\x1f".join(
                (
                    prev,
                    str(vid),
                    str(seq),
                    str(hid),
                    kind,
                    str(points),
                    str(balance_after),
                    reason,
                    ref,
                    key or "",
                    "" if rev is None else str(rev),
                    "" if by is None else str(by),
                    at,
                )
            ).encode()
        ).hexdigest()
        if digest != row[14]:
            return [Problem(code, eid, seq, "hash does not match its fields (edited?)")]
        before = balances.get(hid)
        if before is None and start_seq:
            # The balance before the checkpoint is this household's last verified entry's:
            # checked below for all such households in a few batched reads.
            pending_first[hid] = [eid, seq, points, balance_after]
        elif balance_after != (before or 0) + points:
            running = (before or 0) + points
            return [
                Problem(
                    code,
                    eid,
                    seq,
                    f"balance_after {balance_after} but the entries sum to {running}",
                )
            ]
        balances[hid] = balance_after
        if kind in EARNING or row[15] in EARNING:
            year_key = (hid, _local_year_of(at))
            earned[year_key] = earned.get(year_key, 0) + points
            touched_years.add(year_key)
        prev, expected_seq = digest, expected_seq + 1

    if village.ledger_seq != expected_seq - 1 or village.ledger_head != prev:
        return [
            Problem(
                code,
                None,
                None,
                f"chain head {village.ledger_seq}:{village.ledger_head[:12]} "
                f"but the entries end at {expected_seq - 1}:{prev[:12]}",
            )
        ]
    problems = _check_first_entries(code, village_id, start_seq, pending_first)
    if problems:
        return problems

    # Every household's balance is its last entry's (a household with none has 0).
    last = (
        select(e.c.balance_after)
        .where(e.c.household_id == Household.id)
        .order_by(e.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    for hid, number, balance, last_balance in db.session.execute(
        select(Household.id, Household.number, Household.balance, func.coalesce(last, 0)).where(
            Household.village_id == village_id, Household.balance != func.coalesce(last, 0)
        )
    ):
        last_balance = _last_balance_in_chain(village_id, hid)
        if balance == last_balance:
            continue  # its two last entries' ids cross (see _last_balance_in_chain)
        return [
            Problem(
                code,
                None,
                None,
                f"household {number}: balance {balance} but its entries sum to {last_balance}",
            )
        ]

    # Points earned per year (stars and rank) must be what the entries say, too: every year on a
    # full run, the years the new entries touched otherwise.
    if start_seq:
        earned = _earned_for(village_id, {hid for hid, _year in touched_years})
    stored_q = select(HouseholdYear.household_id, HouseholdYear.year, HouseholdYear.earned).where(
        HouseholdYear.village_id == village_id
    )
    if start_seq:
        households = {hid for hid, _year in touched_years}
        stored_q = stored_q.where(HouseholdYear.household_id.in_(households or {0}))
    stored = {(hid, year): value for hid, year, value in db.session.execute(stored_q)}
    for key in sorted(set(stored) | set(earned)):
        if stored.get(key, 0) != earned.get(key, 0):
            return [
                Problem(
                    code,
                    None,
                    None,
                    f"household id={key[0]} year {key[1]}: points earned "
                    f"{stored.get(key, 0)} but its entries sum to {earned.get(key, 0)}",
                )
            ]

    with transaction():
        row = db.session.get(LedgerCheckpoint, village_id)
        if row is None:
            row = LedgerCheckpoint(village_id=village_id)
            db.session.add(row)
        row.seq, row.hash, row.verified_at = expected_seq - 1, prev, utcnow()
        if not start_seq:
            row.full_verified_at = row.verified_at
    return []


_STREAM_SQL = (
    "SELECT e.id, e.village_id, e.seq, e.household_id, e.kind, e.points, e.balance_after, "
    "e.reason, e.ref, e.key, e.reverses_id, e.created_by_id, e.created_at, e.prev_hash, e.hash, "
    "o.kind FROM ledger_entry e LEFT JOIN ledger_entry o ON o.id = e.reverses_id "
    "WHERE e.village_id = {p} AND e.seq > {p} ORDER BY e.seq"
)


def _stream(village_id: int, after_seq: int):
    """The village's entries after `after_seq`, in chain order, as plain tuples straight from the
    driver (a server-side cursor on PostgreSQL), created_at as the ISO text the hash covers."""
    from ..database import streaming_reads
    from ..extensions import db

    streaming_reads()
    raw = db.session.connection().connection.driver_connection
    if db.engine.dialect.name == "postgresql":
        with raw.cursor(name="ledger_verify") as cur:
            cur.itersize = 10_000
            cur.execute(_STREAM_SQL.format(p="%s"), (village_id, after_seq))
            for row in cur:
                yield row[:12] + (row[12].isoformat(timespec="microseconds"),) + row[13:]
        return
    cur = raw.cursor()
    try:
        cur.execute(_STREAM_SQL.format(p="?"), (village_id, after_seq))
        while rows := cur.fetchmany(10_000):
            for row in rows:
                # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff": the ISO form has a T.
                yield row[:12] + (row[12].replace(" ", "T", 1),) + row[13:]
    finally:
        cur.close()


def _local_year_of(iso: str) -> int:
    """The village's (China time, UTC+8) year of a UTC ISO timestamp, without parsing it."""
    year = int(iso[:4])
    return year + 1 if iso[5:10] == "12-31" and int(iso[11:13]) >= 16 else year


def _COLUMNS(e):  # noqa: N802 - a fixed column list, in _row_hash's order
    return (
        e.c.id,
        e.c.village_id,
        e.c.seq,
        e.c.household_id,
        e.c.kind,
        e.c.points,
        e.c.balance_after,
        e.c.reason,
        e.c.ref,
        e.c.key,
        e.c.reverses_id,
        e.c.created_by_id,
        e.c.created_at,
        e.c.prev_hash,
        e.c.hash,
    )


def _check_first_entries(code, village_id, start_seq, pending) -> list[Problem]:
    """Each household's first new entry must continue its last entry at or before the
    checkpoint: batched reads along the (household, id) index."""
    from sqlalchemy import func, select

    from ..extensions import db
    from .models import LedgerEntry

    e = LedgerEntry.__table__
    ids = list(pending)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        last_ids = (
            select(func.max(e.c.id))
            .where(e.c.household_id.in_(chunk), e.c.seq <= start_seq, e.c.village_id == village_id)
            .group_by(e.c.household_id)
        )
        before = dict(
            db.session.execute(
                select(e.c.household_id, e.c.balance_after).where(e.c.id.in_(last_ids))
            ).all()
        )
        for hid in chunk:
            entry_id, seq, points, balance_after = pending[hid]
            running = before.get(hid, 0) + points
            if balance_after != running:
                running = _last_balance_in_chain(village_id, hid, start_seq) + points
            if balance_after != running:
                return [
                    Problem(
                        code,
                        entry_id,
                        seq,
                        f"balance_after {balance_after} but the entries sum to {running}",
                    )
                ]
    return []


def _last_balance_in_chain(village_id: int, household_id: int, up_to_seq: int | None = None):
    """The balance after the household's last entry in chain order (seq), at or before
    `up_to_seq`; 0 without one. The checks above find the last entry by id along the
    (household, id) index, which is the chain's order for entries written since entry ids are
    drawn under the lock; before that, two redemptions at once could take their ids in the
    other order. A household they flag is looked at again this way before it is reported."""
    from sqlalchemy import select

    from ..extensions import db
    from .models import LedgerEntry

    e = LedgerEntry.__table__
    q = select(e.c.balance_after).where(
        e.c.household_id == household_id, e.c.village_id == village_id
    )
    if up_to_seq is not None:
        q = q.where(e.c.seq <= up_to_seq)
    return db.session.scalar(q.order_by(e.c.seq.desc()).limit(1)) or 0


def _earned_for(village_id: int, households: set[int]) -> dict[tuple[int, int], int]:
    """Points earned per (household, year), summed from all entries of these households."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from ..extensions import db
    from .models import LedgerEntry
    from .services import EARNING, local_year

    e = LedgerEntry.__table__
    original = aliased(LedgerEntry)
    earned: dict[tuple[int, int], int] = {}
    ids = sorted(households)
    for i in range(0, len(ids), 500):
        rows = db.session.execute(
            select(e.c.household_id, e.c.kind, e.c.points, e.c.created_at, original.kind)
            .outerjoin(original, original.id == e.c.reverses_id)
            .where(e.c.household_id.in_(ids[i : i + 500]), e.c.village_id == village_id)
        )
        for hid, kind, points, created_at, reversed_kind in rows:
            if kind in EARNING or reversed_kind in EARNING:
                key = (hid, local_year(created_at))
                earned[key] = earned.get(key, 0) + points
    return earned


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
