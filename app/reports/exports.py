"""Exports of a village's data as .xlsx and UTF-8 CSV, streamed: rows are read from the database
in batches (yield_per; a server-side cursor on PostgreSQL) and written as they come, so 100,000
households never sit in memory at once. A .csv goes out as it is written; an .xlsx is written
row by row (openpyxl write_only) to a temporary file, then sent from it in chunks.

A text cell that starts with = + - @ (or a tab or carriage return) is one a spreadsheet would run
as a formula: in CSV it is written with a leading apostrophe, in .xlsx as a typed text cell with
Excel's quote prefix, so it shows as typed and never runs.
"""

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from ..auth.models import User
from ..database import streaming_reads
from ..errors import InvalidInput
from ..extensions import db
from ..households.models import Household, Resident
from ..ledger.models import HouseholdRank, HouseholdYear, LedgerEntry
from ..ledger.services import LOCAL_TZ, local_year
from ..scoring.models import Decision, Meeting, Proposal, ProposalHousehold
from ..store.models import Item, Redemption, RedemptionLine, StockMove, Venue
from ..villages.models import Village
from ..villages.settings import stars_for

BATCH = 2000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024


@dataclass
class Table:
    name: str  # file name without extension
    title: str  # sheet title
    headers: list[str]
    rows: Iterable[tuple]


# ---------------------------------------------------------------- period


def parse_period(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """?from=YYYY-MM-DD&to=YYYY-MM-DD, both days included; either may be missing."""

    def one(text):
        if not text:
            return None
        try:
            return date.fromisoformat(text.strip()[:10])
        except ValueError:
            raise InvalidInput(
                _l("%(value)s is not a date (YYYY-MM-DD)."), value=text[:20]
            ) from None

    first, last = one(start), one(end)
    if first and last and first > last:
        raise InvalidInput(_l("The start date is after the end date."))
    return first, last


def utc_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The village's local days [first, last] as naive UTC [start, end)."""
    start = datetime.combine(first, datetime.min.time()) - LOCAL_TZ if first else None
    end = (
        datetime.combine(last + timedelta(days=1), datetime.min.time()) - LOCAL_TZ if last else None
    )
    return start, end


def local(at: datetime | None) -> str:
    return (at + LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _stream(stmt) -> Iterator:
    streaming_reads()
    return iter(db.session.execute(stmt.execution_options(yield_per=BATCH)))


# ---------------------------------------------------------------- the tables


def households(village_id: int, now: datetime) -> Table:
    """Every household with its balance (as stored), points earned this year, stars and rank
    (as last computed, from household_rank)."""
    year = local_year(now)
    thresholds = db.session.get(Village, village_id).star_thresholds or []
    hy = aliased(HouseholdYear)
    rank = aliased(HouseholdRank)
    stmt = (
        select(
            Household.number,
            Household.head_name,
            Household.group_name,
            Household.address,
            Household.contact_phone,
            Household.status,
            Household.balance,
            func.coalesce(hy.earned, 0),
            rank.rank,
            rank.year,
        )
        .outerjoin(hy, and_(hy.household_id == Household.id, hy.year == year))
        .outerjoin(rank, rank.household_id == Household.id)
        .where(Household.village_id == village_id)
        .order_by(Household.number)
    )

    def rows():
        for r in _stream(stmt):
            ranked = r[8] if r[9] == year else None
            yield (*r[:8], stars_for(r[7], thresholds), ranked)

    return Table(
        "households",
        str(_l("Households")),
        [
            str(h)
            for h in (
                _l("Household number"),
                _l("Head of household"),
                _l("Group"),
                _l("Address"),
                _l("Contact number"),
                _l("Status"),
                _l("Balance"),
                _l("Earned in %(year)s", year=year),
                _l("Stars"),
                _l("Rank"),
            )
        ],
        rows(),
    )


def ledger(village_id: int, first: date | None, last: date | None) -> Table:
    start, end = utc_bounds(first, last)
    who = aliased(User)
    stmt = (
        select(
            LedgerEntry.seq,
            LedgerEntry.created_at,
            Household.number,
            Household.head_name,
            LedgerEntry.kind,
            LedgerEntry.points,
            LedgerEntry.balance_after,
            LedgerEntry.reason,
            LedgerEntry.ref,
            who.username,
            LedgerEntry.prev_hash,
            LedgerEntry.hash,
        )
        .join(Household, Household.id == LedgerEntry.household_id)
        .outerjoin(who, who.id == LedgerEntry.created_by_id)
        .where(LedgerEntry.village_id == village_id)
        .order_by(LedgerEntry.seq)
    )
    if start:
        stmt = stmt.where(LedgerEntry.created_at >= start)
    if end:
        stmt = stmt.where(LedgerEntry.created_at < end)
    rows = ((r[0], local(r[1]), *r[2:]) for r in _stream(stmt))
    return Table(
        "ledger",
        str(_l("Ledger entries")),
        [
            str(h)
            for h in (
                _l("Seq"),
                _l("Time"),
                _l("Household number"),
                _l("Head of household"),
                _l("Kind"),
                _l("Points"),
                _l("Balance after"),
                _l("Reason"),
                _l("Reference"),
                _l("By"),
                _l("Previous hash"),
                _l("Hash"),
            )
        ],
        rows,
    )


def redemptions(village_id: int, first: date | None, last: date | None) -> Table:
    """One row per redemption line, by venue and day."""
    clerk = aliased(User)
    stmt = (
        select(
            Venue.name,
            Redemption.day,
            Redemption.id,
            Redemption.created_at,
            Household.number,
            Resident.name,
            clerk.username,
            RedemptionLine.name,
            RedemptionLine.qty,
            RedemptionLine.points,
            RedemptionLine.qty * RedemptionLine.points,
            Redemption.voided_at,
        )
        .join(RedemptionLine, RedemptionLine.redemption_id == Redemption.id)
        .join(Venue, Venue.id == Redemption.venue_id)
        .join(Household, Household.id == Redemption.household_id)
        .join(Resident, Resident.id == Redemption.resident_id)
        .outerjoin(clerk, clerk.id == Redemption.clerk_id)
        .where(Redemption.village_id == village_id)
        .order_by(Venue.name, Redemption.day, Redemption.id, RedemptionLine.id)
    )
    if first:
        stmt = stmt.where(Redemption.day >= first)
    if last:
        stmt = stmt.where(Redemption.day <= last)
    voided = str(_l("voided"))
    rows = (
        (r[0], r[1].isoformat(), r[2], local(r[3]), *r[4:11], voided if r[11] else "")
        for r in _stream(stmt)
    )
    return Table(
        "redemptions",
        str(_l("Redemptions")),
        [
            str(h)
            for h in (
                _l("Venue"),
                _l("Day"),
                _l("Redemption"),
                _l("Time"),
                _l("Household number"),
                _l("Taken by"),
                _l("Clerk"),
                _l("Item"),
                _l("Quantity"),
                _l("Points each"),
                _l("Points"),
                _l("Voided"),
            )
        ],
        rows,
    )


def stock(village_id: int, first: date | None, last: date | None) -> Table:
    start, end = utc_bounds(first, last)
    who = aliased(User)
    stmt = (
        select(
            StockMove.created_at,
            Venue.name,
            Item.name,
            StockMove.kind,
            StockMove.qty,
            StockMove.stock_after,
            StockMove.donor,
            StockMove.reason,
            who.username,
        )
        .join(Item, Item.id == StockMove.item_id)
        .join(Venue, Venue.id == Item.venue_id)
        .outerjoin(who, who.id == StockMove.user_id)
        .where(StockMove.village_id == village_id)
        .order_by(StockMove.id)
    )
    if start:
        stmt = stmt.where(StockMove.created_at >= start)
    if end:
        stmt = stmt.where(StockMove.created_at < end)
    rows = ((local(r[0]), *r[1:]) for r in _stream(stmt))
    return Table(
        "stock",
        str(_l("Stock moves")),
        [
            str(h)
            for h in (
                _l("Time"),
                _l("Venue"),
                _l("Item"),
                _l("Kind"),
                _l("Quantity"),
                _l("Stock after"),
                _l("Donor"),
                _l("Reason"),
                _l("By"),
            )
        ],
        rows,
    )


def decisions(village_id: int, first: date | None, last: date | None) -> Table:
    """Every meeting decision, one row per household it covers."""
    stmt = (
        select(
            Meeting.held_on,
            Meeting.title,
            Decision.id,
            Household.number,
            Household.head_name,
            Decision.rule_title,
            Decision.rule_points,
            Decision.outcome,
            Decision.points,
            Decision.reason,
            Proposal.occurred_on,
        )
        .join(Meeting, Meeting.id == Decision.meeting_id)
        .join(Proposal, Proposal.id == Decision.proposal_id)
        .join(ProposalHousehold, ProposalHousehold.proposal_id == Proposal.id)
        .join(Household, Household.id == ProposalHousehold.household_id)
        .where(Decision.village_id == village_id)
        .order_by(Meeting.held_on, Decision.id, Household.number)
    )
    if first:
        stmt = stmt.where(Meeting.held_on >= first)
    if last:
        stmt = stmt.where(Meeting.held_on <= last)
    rows = ((r[0].isoformat(), *r[1:10], r[10].isoformat() if r[10] else "") for r in _stream(stmt))
    return Table(
        "decisions",
        str(_l("Meeting decisions")),
        [
            str(h)
            for h in (
                _l("Meeting date"),
                _l("Meeting"),
                _l("Decision"),
                _l("Household number"),
                _l("Head of household"),
                _l("Rule"),
                _l("Rule points"),
                _l("Outcome"),
                _l("Points"),
                _l("Reason"),
                _l("Happened on"),
            )
        ],
        rows,
    )


EXPORTS: dict[str, Callable] = {
    "households": households,
    "ledger": ledger,
    "redemptions": redemptions,
    "stock": stock,
    "decisions": decisions,
}


# ---------------------------------------------------------------- writers


def safe_text(value):
    """A value as a cell: text a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_chunks(table: Table) -> Iterator[bytes]:
    """UTF-8 with a BOM (so Excel opens Chinese correctly), CRLF, a chunk every ~64 KB."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow([safe_text(v) for v in row])
        if buf.tell() >= CHUNK:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def xlsx_file(table: Table, extra_sheets: Iterable[Table] = ()):
    """An .xlsx written row by row (write_only) into a temporary file; returns the open file,
    at its start. Text that looks like a formula is a typed text cell with a quote prefix."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    for t in (table, *extra_sheets):
        ws = wb.create_sheet(title=t.title[:31])
        bold = []
        for h in t.headers:
            c = WriteOnlyCell(ws, value=h)
            c.font = Font(bold=True)
            bold.append(c)
        ws.append(bold)
        for row in t.rows:
            ws.append([_xlsx_cell(ws, v, WriteOnlyCell) for v in row])
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by file_chunks once sent
    wb.save(out)
    out.seek(0)
    return out


def _xlsx_cell(ws, value, cell_class):
    if isinstance(value, str):
        if value.startswith(FORMULA_START):
            c = cell_class(ws, value=None)
            c.value = value
            c.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
            c.quotePrefix = True
            return c
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def file_chunks(f) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK):
            yield chunk
    finally:
        f.close()
