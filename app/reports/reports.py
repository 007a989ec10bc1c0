"""The village's report for a month or a year: every figure is read from the ledger (entries in
the period, by the village's local time) or from stored rows (balances), so it equals what the
ledger says; tests compare them.

- Earning: awards, deductions and direct adjustments, and reversals of them (counted against
  the category of what they reverse), by rule category and by 村民小组.
- Redemptions: points redeemed per the ledger (redemption entries less their voids); by venue and
  item, the lines of redemptions on days in the period that were not voided.
- Participation: households with at least one award in the period, of the active households.
- Honour roll: the ten households that earned most in the period; households with no entry at all.
- Trend: the 12 months ending with the period, awarded / deducted / redeemed per month.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import aliased

from ..errors import InvalidInput
from ..extensions import db
from ..households.models import Household
from ..ledger.models import LedgerEntry
from ..ledger.services import EARNING, LOCAL_TZ
from ..scoring.models import NoticeItem, Rule
from ..scoring.rules import CATEGORIES
from ..store.models import Redemption, RedemptionLine, Venue
from .exports import Table, utc_bounds

HONOUR = 10
QUIET_SHOWN = 100


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    kind: str  # year | month

    @classmethod
    def for_year(cls, year: int) -> "Period":
        return cls(date(year, 1, 1), date(year, 12, 31), "year")

    @classmethod
    def for_month(cls, year: int, month: int) -> "Period":
        return cls(
            date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), "month"
        )

    @classmethod
    def parse(cls, year: str | None, month: str | None, today: date) -> "Period":
        try:
            if month:
                y, m = (int(x) for x in month.strip()[:7].split("-"))
                if not (2000 <= y <= 2100 and 1 <= m <= 12):
                    raise ValueError
                return cls.for_month(y, m)
            if year:
                y = int(year.strip()[:4])
                if not 2000 <= y <= 2100:
                    raise ValueError
                return cls.for_year(y)
        except ValueError:
            raise InvalidInput(
                _l("Choose a year such as 2026 or a month such as 2026-11.")
            ) from None
        return cls.for_month(today.year, today.month)

    @property
    def label(self) -> str:
        return str(self.first.year) if self.kind == "year" else self.first.strftime("%Y-%m")

    def months(self) -> list[str]:
        """The 12 months ending with the period's last month."""
        y, m = self.last.year, self.last.month
        out = []
        for _ in range(12):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        return out[::-1]


@dataclass
class Report:
    period: Period
    by_category: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    by_group: list[tuple[str, int, int, int]] = field(default_factory=list)
    by_venue: list[tuple[str, int, int]] = field(default_factory=list)  # venue, count, points
    by_item: list[tuple[str, str, int, int]] = field(default_factory=list)  # venue, item, qty, pts
    active_households: int = 0
    awarded_households: int = 0
    honour: list[tuple[str, str, str, int]] = field(default_factory=list)
    quiet_count: int = 0
    quiet: list[tuple[str, str, str]] = field(default_factory=list)
    trend: list[tuple[str, int, int, int]] = field(default_factory=list)
    outstanding: int = 0

    @property
    def awarded(self) -> int:
        return sum(r[1] for r in self.by_category)

    @property
    def deducted(self) -> int:
        return sum(r[2] for r in self.by_category)

    @property
    def reversed(self) -> int:
        return sum(r[3] for r in self.by_category)

    @property
    def net(self) -> int:
        return sum(r[4] for r in self.by_category)

    redeemed: int = 0  # from the ledger: redemption entries less their voids, in the period

    @property
    def participation(self) -> float:
        return self.awarded_households / self.active_households if self.active_households else 0.0


def _month_of(column):
    """The local month 'YYYY-MM' of a naive UTC timestamp, in SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(column + LOCAL_TZ, "YYYY-MM")
    return func.strftime("%Y-%m", column, f"+{int(LOCAL_TZ.total_seconds() // 3600)} hours")


def _earning(village_id: int, start: datetime, end: datetime):
    """Earning entries in [start, end) with the category of the rule behind them (or of the
    entry a reversal reverses): a subquery of (household_id, kind, points, category)."""
    original = aliased(LedgerEntry)
    item = aliased(NoticeItem)
    source = func.coalesce(original.id, LedgerEntry.id)
    source_kind = func.coalesce(original.kind, LedgerEntry.kind)
    source_ref = func.coalesce(original.ref, LedgerEntry.ref)
    category = case(
        (Rule.category.is_not(None), Rule.category),
        (source_kind == "adjust", literal("adjustment")),
        (source_ref.like("gift:%"), literal("gift")),
        else_=literal("other"),
    )
    return (
        select(
            LedgerEntry.household_id,
            LedgerEntry.kind,
            LedgerEntry.points,
            category.label("category"),
        )
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .outerjoin(item, item.ledger_entry_id == source)
        .outerjoin(Rule, Rule.id == item.rule_id)
        .where(
            LedgerEntry.village_id == village_id,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
            source_kind.in_(EARNING),
        )
        .subquery()
    )


def _sums(e):
    return (
        func.coalesce(func.sum(case((e.c.kind == "award", e.c.points), else_=0)), 0)
        + func.coalesce(
            func.sum(case((and_(e.c.kind == "adjust", e.c.points > 0), e.c.points), else_=0)), 0
        ),
        func.coalesce(func.sum(case((e.c.kind == "deduct", e.c.points), else_=0)), 0)
        + func.coalesce(
            func.sum(case((and_(e.c.kind == "adjust", e.c.points < 0), e.c.points), else_=0)), 0
        ),
        func.coalesce(func.sum(case((e.c.kind == "reverse", e.c.points), else_=0)), 0),
        func.coalesce(func.sum(e.c.points), 0),
    )


NUMERALS = {c: i for i, c in enumerate("零一二三四五六七八九十", start=0)}


def group_order(name: str) -> tuple:
    """一组, 二组 ... 十二组, 3组 in their numeric order, other names after them by name."""
    head = ""
    for c in name:
        if c.isdigit() or c in NUMERALS:
            head += c
        else:
            break
    if not head:
        return (1, 0, name)
    if head.isdigit():
        return (0, int(head), name)
    value = 0
    for c in head:
        n = NUMERALS.get(c, int(c) if c.isdigit() else 0)
        value = value + (n if n < 10 else 0) if c != "十" else max(value, 1) * 10
    return (0, value, name)


def category_label(code: str) -> str:
    extra = {
        "adjustment": _l("Direct adjustments"),
        "gift": _l("Gifts to the venues"),
        "other": _l("Other"),
    }
    return str(CATEGORIES.get(code) or extra.get(code) or code)


def build(village_id: int, period: Period) -> Report:
    start, end = utc_bounds(period.first, period.last)
    report = Report(period)
    e = _earning(village_id, start, end)
    awarded, deducted, reversed_, net = _sums(e)
    rows = db.session.execute(
        select(e.c.category, awarded, deducted, reversed_, net).group_by(e.c.category)
    ).all()
    order = list(CATEGORIES) + ["gift", "adjustment", "other"]
    report.by_category = sorted(
        ((r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows),
        key=lambda r: order.index(r[0]) if r[0] in order else 99,
    )
    group = func.coalesce(Household.group_name, "")
    rows = db.session.execute(
        select(group, awarded, deducted, net)
        .select_from(e)
        .join(Household, Household.id == e.c.household_id)
        .group_by(group)
        .order_by(group)
    ).all()
    report.by_group = sorted(
        ((r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows), key=lambda r: group_order(r[0])
    )

    # Redemptions on the period's days that stand (not voided), by venue and by item.
    live = and_(
        Redemption.village_id == village_id,
        Redemption.day >= period.first,
        Redemption.day <= period.last,
        Redemption.voided_at.is_(None),
    )
    report.by_venue = [
        (r[0], int(r[1]), int(r[2] or 0))
        for r in db.session.execute(
            select(Venue.name, func.count(Redemption.id), func.sum(Redemption.total))
            .join(Venue, Venue.id == Redemption.venue_id)
            .where(live)
            .group_by(Venue.id, Venue.name)
            .order_by(Venue.name)
        )
    ]
    report.by_item = [
        (r[0], r[1], int(r[2]), int(r[3]))
        for r in db.session.execute(
            select(
                Venue.name,
                RedemptionLine.name,
                func.sum(RedemptionLine.qty),
                func.sum(RedemptionLine.qty * RedemptionLine.points),
            )
            .join(Redemption, Redemption.id == RedemptionLine.redemption_id)
            .join(Venue, Venue.id == Redemption.venue_id)
            .where(live)
            .group_by(Venue.name, RedemptionLine.name)
            .order_by(Venue.name, func.sum(RedemptionLine.qty * RedemptionLine.points).desc())
        )
    ]

    active = and_(Household.village_id == village_id, Household.status == "active")
    original = aliased(LedgerEntry)
    report.redeemed = -int(
        db.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.points), 0))
            .outerjoin(original, original.id == LedgerEntry.reverses_id)
            .where(
                LedgerEntry.village_id == village_id,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
                func.coalesce(original.kind, LedgerEntry.kind) == "redeem",
            )
        )
    )
    report.active_households = db.session.scalar(select(func.count()).where(active)) or 0
    report.awarded_households = (
        db.session.scalar(
            select(func.count(func.distinct(e.c.household_id))).where(
                e.c.kind.in_(("award", "adjust")), e.c.points > 0
            )
        )
        or 0
    )
    earned = func.sum(e.c.points).label("earned")
    report.honour = [
        (r[0], r[1], r[2], int(r[3]))
        for r in db.session.execute(
            select(Household.number, Household.head_name, Household.group_name, earned)
            .select_from(e)
            .join(Household, Household.id == e.c.household_id)
            .group_by(Household.id, Household.number, Household.head_name, Household.group_name)
            .having(func.sum(e.c.points) > 0)
            .order_by(earned.desc(), Household.number)
            .limit(HONOUR)
        )
    ]
    any_entry = (
        select(LedgerEntry.id)
        .where(
            LedgerEntry.household_id == Household.id,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
        )
        .exists()
    )
    quiet = and_(active, ~any_entry)
    report.quiet_count = db.session.scalar(select(func.count()).where(quiet)) or 0
    report.quiet = [
        tuple(r)
        for r in db.session.execute(
            select(Household.number, Household.head_name, Household.group_name)
            .where(quiet)
            .order_by(Household.number)
            .limit(QUIET_SHOWN)
        )
    ]
    report.outstanding = int(
        db.session.scalar(
            select(func.coalesce(func.sum(Household.balance), 0)).where(
                Household.village_id == village_id
            )
        )
    )
    report.trend = _trend(village_id, period)
    return report


def _trend(village_id: int, period: Period) -> list[tuple[str, int, int, int]]:
    months = period.months()
    first = date.fromisoformat(months[0] + "-01")
    start, end = utc_bounds(first, period.last)
    month = _month_of(LedgerEntry.created_at).label("month")
    original = aliased(LedgerEntry)
    kind = func.coalesce(original.kind, LedgerEntry.kind)
    rows = db.session.execute(
        select(
            month,
            func.sum(
                case((and_(kind.in_(EARNING), LedgerEntry.points > 0), LedgerEntry.points), else_=0)
            ),
            func.sum(
                case((and_(kind.in_(EARNING), LedgerEntry.points < 0), LedgerEntry.points), else_=0)
            ),
            func.sum(case((kind == "redeem", LedgerEntry.points), else_=0)),
        )
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.village_id == village_id,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
        )
        .group_by(month)
    ).all()
    by_month = {r[0]: (int(r[1] or 0), int(r[2] or 0), -int(r[3] or 0)) for r in rows}
    return [(m, *by_month.get(m, (0, 0, 0))) for m in months]


def tables(report: Report) -> list[Table]:
    """The report as sheets of a workbook, the same figures as the page."""
    t = lambda *names: [str(n) for n in names]  # noqa: E731
    return [
        Table(
            "report",
            str(_l("Points by category")),
            t(_l("Category"), _l("Awarded"), _l("Deducted"), _l("Reversed"), _l("Net")),
            [(category_label(c), *v) for c, *v in report.by_category]
            + [(str(_l("Total")), report.awarded, report.deducted, report.reversed, report.net)],
        ),
        Table(
            "groups",
            str(_l("Points by group")),
            t(_l("Group"), _l("Awarded"), _l("Deducted"), _l("Net")),
            [(g or "—", *v) for g, *v in report.by_group],
        ),
        Table(
            "venues",
            str(_l("Redemptions by venue")),
            t(_l("Venue"), _l("Redemptions"), _l("Points")),
            report.by_venue,
        ),
        Table(
            "items",
            str(_l("Redemptions by item")),
            t(_l("Venue"), _l("Item"), _l("Quantity"), _l("Points")),
            report.by_item,
        ),
        Table(
            "participation",
            str(_l("Participation")),
            t(_l("Active households"), _l("Households with an award"), _l("Share")),
            [
                (
                    report.active_households,
                    report.awarded_households,
                    round(report.participation, 4),
                )
            ],
        ),
        Table(
            "honour",
            str(_l("Honour roll")),
            t(_l("Household number"), _l("Head of household"), _l("Group"), _l("Earned")),
            report.honour,
        ),
        Table(
            "quiet",
            str(_l("No activity")),
            t(_l("Household number"), _l("Head of household"), _l("Group")),
            report.quiet,
        ),
        Table(
            "trend",
            str(_l("12-month trend")),
            t(_l("Month"), _l("Awarded"), _l("Deducted"), _l("Redeemed")),
            report.trend,
        ),
    ]


def xlsx(report: Report):
    from .exports import xlsx_file

    first, *rest = tables(report)
    return xlsx_file(first, rest)
