"""/admin/reports: every figure equals what the ledger says, computed here again from the entries
one by one; charts are inline SVG; the .xlsx has the same figures."""

import io
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.database import utcnow
from app.demo import load_demo
from app.extensions import db
from app.households.models import Household
from app.ledger import services as ledger
from app.ledger.models import LedgerEntry
from app.reports.reports import Period, build
from app.scoring.models import NoticeItem, Rule
from app.store.models import Redemption
from app.villages.models import Village

from .. import factories
from ..conftest import csrf_token
from .helpers import HAN, text_of

EARNING = {"award", "deduct", "adjust"}
LOCAL = timedelta(hours=8)


def village_of_demo() -> Village:
    load_demo()
    return db.session.scalar(select(Village).where(Village.code == "shuangtang"))


def by_hand(village: Village, period: Period) -> dict:
    """The report's figures from the ledger's entries, one by one, in Python."""
    entries = db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.village_id == village.id)
    ).all()
    by_id = {e.id: e for e in entries}
    rule_of = dict(
        db.session.execute(
            select(NoticeItem.ledger_entry_id, Rule.category).join(
                Rule, Rule.id == NoticeItem.rule_id
            )
        ).all()
    )
    households = {h.id: h for h in db.session.scalars(select(Household))}
    net_by_cat, net_by_group, earned = Counter(), Counter(), Counter()
    awarded_households = set()
    touched = set()
    month = defaultdict(lambda: [0, 0, 0])
    for e in entries:
        local = (e.created_at + LOCAL).date()
        source = by_id[e.reverses_id] if e.reverses_id else e
        in_period = period.first <= local <= period.last
        if in_period:
            touched.add(e.household_id)
        key = local.strftime("%Y-%m")
        if source.kind in EARNING:
            month[key][0 if e.points > 0 else 1] += e.points if e.points else 0
        elif source.kind == "redeem":
            month[key][2] -= e.points
        if not in_period or source.kind not in EARNING:
            continue
        cat = rule_of.get(source.id) or (
            "adjustment"
            if source.kind == "adjust"
            else "gift"
            if source.ref.startswith("gift:")
            else "other"
        )
        net_by_cat[cat] += e.points
        net_by_group[households[e.household_id].group_name] += e.points
        earned[e.household_id] += e.points
        if e.kind in ("award", "adjust") and e.points > 0:
            awarded_households.add(e.household_id)
    redeemed = -sum(
        e.points
        for e in entries
        if (by_id[e.reverses_id] if e.reverses_id else e).kind == "redeem"
        and period.first <= (e.created_at + LOCAL).date() <= period.last
    )
    at_venues = sum(
        r.total
        for r in db.session.scalars(select(Redemption).where(Redemption.voided_at.is_(None)))
        if period.first <= r.day <= period.last
    )
    active = [h for h in households.values() if h.status == "active"]
    return {
        "by_cat": {k: v for k, v in net_by_cat.items()},
        "by_group": {k: v for k, v in net_by_group.items()},
        "earned": earned,
        "awarded_households": len(awarded_households),
        "active": len(active),
        "quiet": len([h for h in active if h.id not in touched]),
        "redeemed": redeemed,
        "at_venues": at_venues,
        "month": month,
    }


def redeem_at_the_shop(village: Village) -> None:
    """Two redemptions at the demo's love supermarket, one of them voided."""
    import uuid

    from app.auth.models import User
    from app.store import codes, services
    from app.store.models import Item, Venue

    clerk = db.session.scalar(select(User).where(User.username == "shop"))
    venue = db.session.scalar(select(Venue).where(Venue.kind == "supermarket"))
    item = db.session.scalar(
        select(Item).where(Item.venue_id == venue.id, Item.stock > 5).order_by(Item.points)
    )
    h = db.session.scalar(select(Household).where(Household.balance > 50).limit(1))
    made = []
    for qty in (2, 1):
        receipt, _ = services.redeem(
            village.id,
            venue.id,
            clerk.id,
            codes.card_token(h.public_id, h.card_version),
            [{"item_id": item.id, "qty": qty}],
            uuid.uuid4().hex,
            resident_id=h.residents[0].id,
        )
        made.append(receipt)
    services.void(village.id, made[1].id, clerk.id, admin=True, reason="退货")


def this_year() -> Period:
    return Period.for_year((utcnow() + LOCAL).year)


def this_month() -> Period:
    today = (utcnow() + LOCAL).date()
    return Period.for_month(today.year, today.month)


@pytest.mark.parametrize("period", [this_year, this_month], ids=["year", "month"])
def test_report_figures_equal_the_ledger(app, period):
    village = village_of_demo()
    # A reversal of an award counts against the award's category.
    entry = db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.kind == "award").order_by(LedgerEntry.id.desc())
    )
    ledger.reverse(village.id, entry.id, "记错了", None)
    ledger.adjust(village.id, entry.household_id, -3, "直接扣分", None)
    redeem_at_the_shop(village)
    p = period()
    report = build(village.id, p)
    expected = by_hand(village, p)
    assert {c: net for c, _a, _d, _r, net in report.by_category} == expected["by_cat"]
    assert report.net == sum(expected["by_cat"].values())
    assert report.awarded + report.deducted + report.reversed == report.net
    assert {g: net for g, _a, _d, net in report.by_group} == expected["by_group"]
    assert report.redeemed == expected["redeemed"] and report.redeemed > 0
    assert sum(p for _v, _n, p in report.by_venue) == expected["at_venues"] > 0
    assert sum(p for _v, _i, _q, p in report.by_item) == expected["at_venues"]
    assert report.awarded_households == expected["awarded_households"]
    assert report.active_households == expected["active"]
    assert report.quiet_count == expected["quiet"]
    top = sorted(((v, hid) for hid, v in expected["earned"].items() if v > 0), key=lambda t: -t[0])[
        :10
    ]
    assert [e for *_x, e in report.honour] == [v for v, _h in top]
    for month, awarded, deducted, redeemed in report.trend:
        assert [awarded, deducted, redeemed] == expected["month"].get(month, [0, 0, 0]), month
    assert report.outstanding == sum(h.balance for h in db.session.scalars(select(Household)))


@pytest.fixture
def demo_admin(app, client):
    village = village_of_demo()
    resp = client.post(
        "/login",
        data={"username": "admin", "password": "demo1234", "csrf_token": csrf_token(client)},
    )
    assert resp.status_code == 302
    return village


def test_report_page_shows_charts_and_the_same_figures(client, demo_admin):
    p = this_year()
    resp = client.get(f"/admin/reports?year={p.first.year}")
    assert resp.status_code == 200
    html = text_of(resp)
    assert html.count('<svg class="chart"') >= 3  # the demo has no counter redemptions
    report = build(demo_admin.id, p)
    assert f"+{report.awarded}" in html and f'<th class="num">{report.net}</th>' in html
    assert "按类别统计积分" in html and "荣誉榜" in html


def test_report_downloads_as_xlsx_with_the_same_figures(client, demo_admin):
    p = this_year()
    resp = client.get(f"/admin/reports.xlsx?year={p.first.year}")
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.data))
    report = build(demo_admin.id, p)
    first = list(wb.worksheets[0].iter_rows(values_only=True))
    assert all(HAN.search(h) for h in first[0])
    assert first[-1][1:] == (report.awarded, report.deducted, report.reversed, report.net)
    assert len(wb.worksheets) == 8


def test_a_month_report_and_a_bad_period(client, demo_admin):
    assert client.get("/admin/reports?month=2026-11").status_code == 200
    for bad in ("month=2026-13", "year=abc", "month=x"):
        resp = client.get(f"/admin/reports?{bad}")
        assert resp.status_code == 422 and HAN.search(text_of(resp))


def test_scorers_read_reports_clerks_and_villagers_do_not(client, login_as):
    login_as("scorer")
    assert client.get("/admin/reports").status_code == 200
    for role in ("clerk", "villager"):
        login_as(role)
        assert client.get("/admin/reports").status_code == 403
        assert client.get("/admin/reports.xlsx").status_code == 403


def test_a_report_sees_only_its_own_village(client, login_as, village):
    other = factories.village("xiwan", "西湾村")
    h = factories.household(other, number="X1", head="西湾的户")
    ledger.adjust(other.id, h.id, 50, "西湾加分", None)
    login_as("village_admin")
    html = text_of(client.get("/admin/reports"))
    assert "西湾的户" not in html and "+50" not in html
