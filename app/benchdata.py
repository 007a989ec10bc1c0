"""Benchmark data: `flask bench seed` makes a village of N households and M ledger entries whose
ledger verifies, in minutes (bulk inserts; COPY on PostgreSQL), for the page and counter
benchmarks in scripts/. Never for a real village: the entries are made up, and the rows are
written directly, not through the ledger service (which would take hours for 10 million).
"""

import hashlib
import random
import time
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import insert, select, update

from .database import utcnow
from .extensions import db
from .households.models import Household, Resident, new_public_id
from .ledger.models import HouseholdYear, LedgerEntry
from .ledger.services import EARNING, local_year, recompute_ranks
from .villages.models import GENESIS_HASH, Village

bench_cli = AppGroup("bench", help="Benchmark data (never for a real village).")

REASONS = [("award", 5, "清洁日"), ("award", 10, "孝老爱亲"), ("redeem", 3, "爱心超市: 食盐×1")]
CHUNK = 20_000


@bench_cli.command("seed")
@click.option("--village", "code", default="bench", help="Code of the new village.")
@click.option("--households", type=click.IntRange(1, 2_000_000), default=1000)
@click.option("--entries", type=click.IntRange(0, 100_000_000), default=10_000)
@click.option("--opening", type=click.IntRange(0, 1_000_000), default=0, help="Points each.")
@click.option("--password", default="bench-pass-1", help="Password of its admin, CODE-admin.")
def seed_command(code: str, households: int, entries: int, opening: int, password: str):
    """A new village CODE with HOUSEHOLDS households (a head each) and ENTRIES ledger entries,
    the first of each household an opening balance of OPENING points when given."""
    started = time.perf_counter()
    seed(code, households, entries, password, opening=opening)
    click.echo(
        f"village {code}: {households} households, {entries} entries "
        f"in {time.perf_counter() - started:.0f} s"
    )


def seed(code: str, n_households: int, n_entries: int, password: str, *, opening: int = 0) -> int:
    from .villages.services import create_village

    village = create_village(code, f"测试村 {code}", f"{code}-admin", password, None)
    vid = village.id
    _households(vid, n_households)
    ids = db.session.scalars(
        select(Household.id).where(Household.village_id == vid).order_by(Household.id)
    ).all()
    _residents(vid, ids)
    seq, head = _entries(vid, ids, n_entries, opening)
    db.session.execute(
        update(Village).where(Village.id == vid).values(ledger_seq=seq, ledger_head=head)
    )
    db.session.commit()
    recompute_ranks(vid)
    return vid


def _households(vid: int, n: int) -> None:
    for start in range(0, n, CHUNK):
        rows = [
            dict(
                village_id=vid,
                public_id=new_public_id(),
                number=f"{i:06d}",
                head_name=f"户主{i}",
                group_name=f"{i % 12 + 1}组",
                address=f"{i}号",
                status="active",
                balance=0,
                card_version=1,
                created_at=utcnow(),
            )
            for i in range(start + 1, min(n, start + CHUNK) + 1)
        ]
        db.session.execute(insert(Household), rows)
    db.session.commit()


def _residents(vid: int, ids: list[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        rows = [
            dict(
                village_id=vid,
                household_id=hid,
                name=f"村民{hid}",
                phone=None,
                birth_year=1940 + hid % 60,
                status="active",
                created_at=utcnow(),
            )
            for hid in ids[start : start + CHUNK]
        ]
        db.session.execute(insert(Resident), rows)
    db.session.commit()


COLUMNS = [
    "village_id",
    "seq",
    "household_id",
    "kind",
    "points",
    "balance_after",
    "reason",
    "ref",
    "key",
    "reverses_id",
    "created_by_id",
    "created_at",
    "prev_hash",
    "hash",
]


def _entries(vid: int, ids: list[int], n: int, opening: int = 0) -> tuple[int, str]:
    """Entries spread over the households and two years, chained and with running balances;
    written in chunks (COPY on PostgreSQL), then balances and points earned per year."""
    rng = random.Random(vid)
    balances = dict.fromkeys(ids, 0)
    earned: dict[tuple[int, int], int] = {}
    prev, seq = GENESIS_HASH, 0
    start = utcnow() - timedelta(days=730)
    step = timedelta(days=730) / max(n, 1)
    postgres = db.engine.dialect.name == "postgresql"
    chunk: list[tuple] = []
    for k in range(n):
        hid = ids[k % len(ids)] if k < len(ids) else rng.choice(ids)
        kind, points, reason = REASONS[rng.randrange(3)]
        if opening and k < len(ids):
            kind, points, reason = "opening", opening, "期初积分"
        elif kind == "redeem":
            if balances[hid] < points:
                kind, points, reason = REASONS[0]
            else:
                points = -points
        seq += 1
        balances[hid] += points
        at = start + step * k
        digest = hashlib.sha256(
            "\x1f".join(
                (
                    prev,
                    str(vid),
                    str(seq),
                    str(hid),
                    kind,
                    str(points),
                    str(balances[hid]),
                    reason,
                    "",
                    "",
                    "",
                    "",
                    at.isoformat(timespec="microseconds"),
                )
            ).encode()
        ).hexdigest()
        chunk.append(
            (vid, seq, hid, kind, points, balances[hid], reason, "", None, None, None, at, prev)
            + (digest,)
        )
        if kind in EARNING:
            key = (hid, local_year(at))
            earned[key] = earned.get(key, 0) + points
        prev = digest
        if len(chunk) == CHUNK:
            _write_entries(chunk, postgres)
            chunk = []
    if chunk:
        _write_entries(chunk, postgres)
    for start_i in range(0, len(ids), CHUNK):
        part = ids[start_i : start_i + CHUNK]
        db.session.execute(
            update(Household),
            [{"id": hid, "balance": balances[hid]} for hid in part],
        )
    rows = [
        dict(village_id=vid, household_id=hid, year=year, earned=value)
        for (hid, year), value in earned.items()
    ]
    for start_i in range(0, len(rows), CHUNK):
        db.session.execute(insert(HouseholdYear), rows[start_i : start_i + CHUNK])
    db.session.commit()
    return seq, prev


def _write_entries(rows: list[tuple], postgres: bool) -> None:
    if postgres:
        raw = db.session.connection().connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY ledger_entry ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        db.session.execute(
            LedgerEntry.__table__.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in rows]
        )
    db.session.commit()
