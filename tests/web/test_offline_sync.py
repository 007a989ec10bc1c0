"""The offline counter's server side: the offline list, and a sync that records each offline
redemption exactly once - honoured within the allowance (even below zero), a conflict beyond
it or for a card reissued before the sale - on SQLite and PostgreSQL."""

from collections import Counter
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app.auth.models import User
from app.database import utcnow
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.ledger.models import LedgerEntry
from app.offline import services as offline
from app.offline.models import OfflineConflict
from app.store import rules, services
from app.store.models import Item, Redemption
from app.villages.services import update_settings

from .. import factories
from ..services.test_store import card_code, head_of, make_store, pay_code, resident_of, rid
from .helpers import count, fresh, snapshot, text_of
from .test_counter_concurrency import clerk_session, hammer, live_secret
from .test_store_api import Api, sign_in


@pytest.fixture
def store(village):
    return make_store(village)


@pytest.fixture
def api(client, store):
    return Api(client, sign_in(client, store.clerk))


def household(village, opening=100, number=None):
    return factories.household(village, opening=opening, number=number).id


def iso(at) -> str:
    return at.isoformat() + "Z"


def sale(api, h, item, qty=1, *, request_id=None, minutes_ago=1, listed=None, **kw):
    """A redemption as the offline counter sends it (after fetching its list, unless given)."""
    if listed is None:
        listed = api.get("/counter/offline").get_json()["list"]
    return {
        "code": card_code(h),
        "lines": [{"item_id": item, "qty": qty}],
        "request_id": request_id or rid(),
        "resident_id": head_of(h).id,
        "receipt_no": kw.pop("receipt_no", "T1-" + rid()[:6]),
        "occurred_at": iso(utcnow() - timedelta(minutes=minutes_ago)),
        "list": listed,
        **kw,
    }


def test_offline_list_holds_card_hashes_allowances_and_prices(api, store, village):
    rich, poor = household(village, 300), household(village, 30)
    resp = api.get("/counter/offline")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["enabled"] and body["cap"] == 100 and body["csrf"]
    assert [(i["name"], i["points"], i["stock"]) for i in body["items"]] == [
        ("大米", 10, 10),
        ("油", 5, 50),
    ]
    by_number = {h["number"]: h for h in body["households"]}
    hr = db.session.get(Household, rich)
    entry = by_number[hr.number]
    assert entry["card"] == offline.card_hash(card_code(rich))
    assert entry["allowance"] == 100 and entry["balance"] == 300
    assert by_number[db.session.get(Household, poor).number]["allowance"] == 30
    assert [r["id"] for r in entry["residents"]] == [head_of(rich).id]
    # Never the card token itself.
    assert card_code(rich) not in text_of(resp) and hr.public_id + '"' not in entry["card"]
    # What it redeemed offline today counts against today's cap (100) in the next list.
    assert (
        api.post("/counter/offline/redemptions", sale(api, rich, store.rice, 2)).status_code == 201
    )
    listed = {x["number"]: x for x in api.get("/counter/offline").get_json()["households"]}
    assert listed[hr.number]["allowance"] == 80 and listed[hr.number]["balance"] == 280


def test_offline_is_off_with_a_zero_cap_or_a_card_pin(api, store, village):
    household(village)
    admin = factories.user(village, "village_admin")
    update_settings(village.id, {"offline_daily_cap": 0}, admin.id)
    body = api.get("/counter/offline").get_json()
    assert body["enabled"] is False and body["why_off"] == "cap" and body["households"] == []
    update_settings(village.id, {"offline_daily_cap": 50, "card_pin_required": True}, admin.id)
    body = api.get("/counter/offline").get_json()
    assert body["enabled"] is False and body["why_off"] == "pin"


def test_sync_records_once_per_request_id(api, store, village):
    h = household(village)
    body = sale(api, h, store.rice, 2)
    first = api.post("/counter/offline/redemptions", body)
    assert first.status_code == 201, first.get_json()
    data = first.get_json()
    assert data["status"] == "recorded" and data["overdraft"] == 0
    assert data["redemption"]["total"] == 20 and data["redemption"]["balance_after"] == 80
    assert data["receipt_no"] == body["receipt_no"]
    again = api.post("/counter/offline/redemptions", body)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["redemption"]["id"] == data["redemption"]["id"]
    assert count(Redemption) == 1
    r = db.session.get(Redemption, data["redemption"]["id"])
    assert r.receipt_no == body["receipt_no"] and r.occurred_at < r.created_at
    assert db.session.get(Household, h).balance == 80
    assert db.session.get(Item, store.rice).stock == 8
    entry = db.session.get(LedgerEntry, r.entry_id)
    assert "离线" in entry.reason and body["receipt_no"] in entry.reason
    # Today's offline redemptions count against today's cap in the next list.
    listed = {x["number"]: x for x in api.get("/counter/offline").get_json()["households"]}
    assert listed[db.session.get(Household, h).number]["allowance"] == 80
    reused = api.post("/counter/offline/redemptions", {**body, "receipt_no": "other"})
    assert reused.status_code == 409 and reused.get_json()["error"] == "request_id_reused"
    assert count(Redemption) == 1 and verify() == []


def test_within_the_allowance_is_honoured_below_zero_and_shown_to_the_admin(
    app, api, store, village
):
    h = household(village, 30)
    listed = api.get("/counter/offline").get_json()["list"]
    # Meanwhile the household spends 25 of its 30 points at another counter, online.
    services.redeem(
        village.id, store.shop, store.clerk, card_code(h), [{"item_id": store.oil, "qty": 5}], rid()
    )
    resp = api.post("/counter/offline/redemptions", sale(api, h, store.rice, 2, listed=listed))
    data = resp.get_json()
    assert resp.status_code == 201 and data["status"] == "recorded"
    assert data["overdraft"] == 15 and data["redemption"]["balance_after"] == -15
    fresh()
    assert db.session.get(Household, h).balance == -15
    entry = db.session.get(
        LedgerEntry, db.session.get(Redemption, data["redemption"]["id"]).entry_id
    )
    assert "透支 15" in entry.reason
    # A third sale from the same list goes beyond its allowance (30): a conflict, not posted.
    before = db.session.get(Household, h).balance
    body = sale(api, h, store.rice, 2, listed=listed)
    resp = api.post("/counter/offline/redemptions", body)
    assert resp.status_code == 201 and resp.get_json()["status"] == "conflict"
    assert resp.get_json()["conflict"]["reason"] == "allowance"
    again = api.post("/counter/offline/redemptions", body)
    assert again.status_code == 200 and again.get_json()["status"] == "conflict"
    assert count(OfflineConflict) == 1 and count(Redemption) == 2
    assert db.session.get(Household, h).balance == before
    assert verify() == []
    # The admin sees both lists.
    admin = app.test_client()
    sign_in(admin, factories.user(village, "village_admin").id)
    page = text_of(admin.get("/admin/offline"))
    assert body["receipt_no"] in page and "-15" in page


def test_a_card_reissued_before_the_sale_is_a_conflict(api, store, village):
    h = household(village)
    old_card = card_code(h)
    listed = api.get("/counter/offline").get_json()["list"]
    body = sale(api, h, store.oil, listed=listed, code=old_card, minutes_ago=0)
    services.reissue_card(village.id, h, None)  # after this sale: honoured
    sold_before = sale(api, h, store.oil, listed=listed, code=old_card, minutes_ago=10)
    resp = api.post("/counter/offline/redemptions", sold_before)
    assert resp.get_json()["status"] == "recorded"
    body["occurred_at"] = iso(utcnow() + timedelta(seconds=1))  # after the reissue
    resp = api.post("/counter/offline/redemptions", body)
    assert resp.get_json()["status"] == "conflict"
    assert resp.get_json()["conflict"]["reason"] == "card_replaced"
    assert verify() == []


def test_refused_syncs_write_nothing(api, store, village):
    h = household(village)
    for change, status in [
        (lambda b: b.update(code=pay_code(head_of(h).id)), 422),
        (lambda b: b.update(occurred_at="yesterday"), 422),
        (lambda b: b.update(occurred_at=iso(utcnow() + timedelta(hours=2))), 422),
        (lambda b: b.update(receipt_no=""), 422),
        (lambda b: b.update(resident_id=None), 422),
        (lambda b: b.update(lines=[{"item_id": store.lunch, "qty": 1}]), 422),
        (lambda b: b.update(code="forged"), 404),
        (lambda b: b.update(extra=1), 422),
    ]:
        body = sale(api, h, store.rice)
        change(body)
        before = snapshot()
        resp = api.post("/counter/offline/redemptions", body)
        assert resp.status_code == status, (body, resp.get_json())
        assert resp.get_json()["message"]
        assert snapshot() == before


def test_the_cards_daily_cap_holds_offline_too(app, api, store, village):
    """What a card spent today, online or offline, counts against the card's daily cap: the
    list's allowance leaves out what is spent, and a sync beyond the cap (the card spent online
    elsewhere since the list) is a conflict for the admin, nothing posted."""
    admin = factories.user(village, "village_admin")
    update_settings(village.id, {"card_daily_cap": 30}, admin.id)
    h = household(village, 100)
    number = db.session.get(Household, h).number

    def allowance():
        listed = api.get("/counter/offline").get_json()["households"]
        return {x["number"]: x["allowance"] for x in listed}[number]

    assert allowance() == 30  # the card's cap, below the balance and the offline cap (100)
    services.redeem(
        village.id, store.shop, store.clerk, card_code(h), [{"item_id": store.oil, "qty": 1}], rid()
    )
    assert allowance() == 25
    listed = api.get("/counter/offline").get_json()["list"]
    resp = api.post("/counter/offline/redemptions", sale(api, h, store.rice, 2, listed=listed))
    assert resp.get_json()["status"] == "recorded"  # 5 + 20: within the cap
    assert allowance() == 5
    # From the same list, 5 more would fit its allowance (25) but not the card's cap any more
    # once the card spent online again meanwhile.
    services.redeem(
        village.id, store.shop, store.clerk, card_code(h), [{"item_id": store.oil, "qty": 1}], rid()
    )
    before, balance = count(Redemption), db.session.get(Household, h).balance
    resp = api.post("/counter/offline/redemptions", sale(api, h, store.oil, 1, listed=listed))
    assert resp.status_code == 201 and resp.get_json()["status"] == "conflict"
    assert resp.get_json()["conflict"]["reason"] == "card_cap"
    assert count(Redemption) == before and db.session.get(Household, h).balance == balance
    assert allowance() == 0
    page = text_of(app.test_client().get("/admin/offline"))  # signed out: no list for anyone
    assert "超过该卡当天可用的积分上限" not in page
    reader = app.test_client()
    sign_in(reader, admin.id)
    assert "超过该卡当天可用的积分上限" in text_of(reader.get("/admin/offline"))
    assert verify() == []


def test_offline_meals_keep_to_each_residents_daily_limit(app, store, village):
    """The canteen's list tells the counter each resident's meals today and each meal's limit
    (the counter refuses beyond it); a sync beyond it all the same - two counters offline, each
    serving one - is a conflict for the admin, nothing posted."""
    client = app.test_client()
    cook = Api(client, sign_in(client, store.cook))
    h = household(village)
    body = cook.get("/counter/offline").get_json()
    assert body["day"] == rules.local_day(utcnow()).isoformat() and body["utc_offset"] == 480
    assert {i["name"]: i["limit"] for i in body["items"]} == {"午餐": 1, "早餐": 2}
    public_id = db.session.get(Household, h).public_id
    (entry,) = [x for x in body["households"] if x["public_id"] == public_id]
    assert entry["residents"][0]["meals"] == {}
    lunch = cook.post("/counter/offline/redemptions", sale(cook, h, store.lunch))
    assert lunch.get_json()["status"] == "recorded", lunch.get_json()
    two = [sale(cook, h, store.breakfast, minutes_ago=m) for m in (3, 2)]
    assert [cook.post("/counter/offline/redemptions", b).get_json()["status"] for b in two] == [
        "recorded",
        "recorded",
    ]
    body = cook.get("/counter/offline").get_json()
    (entry,) = [x for x in body["households"] if x["public_id"] == public_id]
    assert entry["residents"][0]["meals"] == {"lunch": 1, "breakfast": 2}
    before = count(Redemption)
    balance = db.session.get(Household, h).balance
    for item in (store.lunch, store.breakfast):
        resp = cook.post("/counter/offline/redemptions", sale(cook, h, item))
        assert resp.status_code == 201
        assert resp.get_json()["status"] == "conflict"
        assert resp.get_json()["conflict"]["reason"] == "meal_limit"
    assert count(Redemption) == before and db.session.get(Household, h).balance == balance
    reasons = [c.reason for c in db.session.scalars(select(OfflineConflict))]
    assert reasons == ["meal_limit", "meal_limit"]
    # Another resident of the household has a limit of their own.
    other = resident_of(h, name="李小花").id
    resp = cook.post("/counter/offline/redemptions", sale(cook, h, store.lunch, resident_id=other))
    assert resp.get_json()["status"] == "recorded"
    # The admin sees why, in words.
    admin = app.test_client()
    sign_in(admin, factories.user(village, "village_admin").id)
    assert "超过该村民当天这一餐的次数限制" in text_of(admin.get("/admin/offline"))
    assert verify() == []


def test_a_sync_without_a_valid_list_is_a_conflict(api, store, village):
    h = household(village)
    resp = api.post("/counter/offline/redemptions", sale(api, h, store.rice, listed="forged"))
    assert resp.get_json()["conflict"]["reason"] == "no_list"
    fresh()
    assert db.session.get(Household, h).balance == 100


def test_who_may_use_the_offline_api(client, store, village, login_as):
    assert client.get("/api/v1/counter/offline").status_code == 401
    assert client.post("/api/v1/counter/offline/redemptions", json={}).status_code == 401
    login_as("villager")
    assert client.get("/api/v1/counter/offline").status_code == 403
    login_as("scorer")
    assert client.get("/api/v1/counter/offline").status_code == 403
    # A clerk of another village sees none of this village's households.
    h = household(village)
    other = factories.village("other", "别村")
    other_store = make_store(other)
    api = Api(client, sign_in(client, other_store.clerk))
    body = api.get("/counter/offline").get_json()
    assert body["households"] == []
    mine = sale(api, h, other_store.rice)
    resp = api.post("/counter/offline/redemptions", mine)
    assert resp.status_code == 403 and resp.get_json()["error"] == "other_village"
    # The admin pages are the village admin's.
    login_as("clerk")
    assert client.get("/admin/offline").status_code == 403


def test_admin_accepts_or_dismisses_a_conflict(app, api, store, village):
    h = household(village, 10)
    listed = api.get("/counter/offline").get_json()["list"]
    big = sale(api, h, store.rice, 3, listed=listed)  # 30 > the allowance of 10
    assert api.post("/counter/offline/redemptions", big).get_json()["status"] == "conflict"
    small = sale(api, h, store.oil, 3, listed=listed)  # 15 > 10 as well
    assert api.post("/counter/offline/redemptions", small).get_json()["status"] == "conflict"
    client = app.test_client()
    token = sign_in(client, factories.user(village, "village_admin").id)
    ids = [c.id for c in db.session.scalars(select(OfflineConflict).order_by(OfflineConflict.id))]
    resp = client.post(
        f"/admin/offline/conflicts/{ids[0]}",
        data={"csrf_token": token, "decision": "accept", "note": "已核实"},
    )
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, h).balance == -20
    resp = client.post(
        f"/admin/offline/conflicts/{ids[1]}", data={"csrf_token": token, "decision": "dismiss"}
    )
    fresh()
    assert db.session.get(OfflineConflict, ids[1]).status == "open"  # a reason is required
    client.post(
        f"/admin/offline/conflicts/{ids[1]}",
        data={"csrf_token": token, "decision": "dismiss", "note": "未发货"},
    )
    fresh()
    assert [
        c.status for c in db.session.scalars(select(OfflineConflict).order_by(OfflineConflict.id))
    ] == [
        "accepted",
        "dismissed",
    ]
    # A replay of the accepted one now answers with its redemption.
    again = api.post("/counter/offline/redemptions", big)
    assert again.status_code == 200 and again.get_json()["status"] == "recorded"
    assert count(Redemption) == 1 and verify() == []


@pytest.mark.server
def test_a_sync_replayed_at_once_by_many_tabs_is_recorded_once(app, live_server, store, village):
    h = household(village, 60)
    username = db.session.get(User, store.clerk).username
    auth = [clerk_session(live_server, username) for _ in range(2)]
    s = requests.Session()
    s.cookies.update(auth[0][0])
    listed = s.get(live_server + "/api/v1/counter/offline").json()["list"]
    with live_secret(app):
        card = card_code(h)
    resident = head_of(h).id

    def body(qty, request_id=None):
        return {
            "code": card,
            "lines": [{"item_id": store.oil, "qty": qty}],
            "request_id": request_id or rid(),
            "resident_id": resident,
            "receipt_no": "T1-" + rid()[:6],
            "occurred_at": iso(utcnow() - timedelta(minutes=1)),
            "list": listed,
        }

    # The same offline sale sent by 12 tabs at once: one redemption, 11 replays.
    one = body(2)
    results = hammer(live_server, auth, [one] * 12, path="offline/redemptions")
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 200: 11}, results
    assert len({b["redemption"]["id"] for _, b in results}) == 1
    # 12 different sales of 10 points (5 oil) at once against an allowance of 60: 10 already
    # spent, so 5 are honoured and 7 are conflicts - never more, however they interleave.
    results = hammer(live_server, auth, [body(2) for _ in range(12)], path="offline/redemptions")
    kinds = Counter(b["status"] for _, b in results)
    assert kinds == {"recorded": 5, "conflict": 7}, results
    fresh()
    assert db.session.get(Household, h).balance == 0
    assert count(Redemption) == 6 and count(OfflineConflict) == 7
    assert verify() == []


def test_the_service_worker_keeps_the_hashed_files_the_counter_page_uses(client, api):
    import re

    page = text_of(client.get("/counter"))
    used = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page))
    assert any("offline." in u for u in used) and any("store-counter." in u for u in used)
    resp = client.get("/counter/sw.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript"
    assert resp.headers["Service-Worker-Allowed"] == "/counter"
    assert resp.headers["Cache-Control"] == "no-cache"
    script = text_of(resp)
    for url in used:
        assert f'"{url}"' in script, url
    assert '"/counter"' in script
    manifest = client.get("/counter/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    body = manifest.get_json(force=True)
    assert body["start_url"] == "/counter" and body["scope"] == "/counter"
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200
    assert 'rel="manifest"' in page


def test_the_offline_cap_is_a_setting_with_its_history(client, village, login_as):
    from .helpers import post

    login_as("village_admin")
    page = text_of(client.get("/admin/settings"))
    assert "断网时每户每天最多可兑换的积分" in page and 'value="100"' in page
    form = {
        "notice_days": 5,
        "star_thresholds": "50, 100, 200, 300, 500",
        "card_daily_cap": 500,
        "offline_daily_cap": 30,
        "meal_age_tiers": "60:5, 70:3, 80:0",
        "notice_public_days": 30,
    }
    assert post(client, "/admin/settings", form).status_code == 302
    fresh()
    assert db.session.get(type(village), village.id).offline_daily_cap == 30
    assert "100 → 30" in text_of(client.get("/admin/settings"))
    before = snapshot()
    resp = post(client, "/admin/settings", {**form, "offline_daily_cap": -1})
    assert resp.status_code == 422 and "离线额度为 0 至 100000 积分" in text_of(resp)
    assert snapshot() == before


def test_another_villages_admin_cannot_decide_a_conflict(app, api, store, village):
    h = household(village, 10)
    body = sale(api, h, store.rice, 3)  # beyond its allowance of 10
    conflict_id = api.post("/counter/offline/redemptions", body).get_json()["conflict"]["id"]
    other = factories.village("other", "别村")
    client = app.test_client()
    token = sign_in(client, factories.user(other, "village_admin").id)
    assert str(body["receipt_no"]) not in text_of(client.get("/admin/offline"))
    before = snapshot()
    resp = client.post(
        f"/admin/offline/conflicts/{conflict_id}",
        data={"csrf_token": token, "decision": "accept", "note": "x"},
        follow_redirects=True,
    )
    assert resp.status_code == 200 and "没有找到" in text_of(resp)
    after = snapshot()
    after.pop("audit_log", None), before.pop("audit_log", None)
    assert after == before
