"""Store pages: /q/<token> for clerk, owner and anyone; the pay code; cards; venues and stock."""

import re

import pytest
import zxingcpp
from sqlalchemy import func, select

from app.auth.models import User
from app.database import transaction
from app.extensions import db
from app.households.models import Household
from app.store import codes
from app.store.models import Item, PayCode, Redemption, StockMove
from app.villages.models import Village

from .. import factories
from ..services.test_store import card_code, head_of, make_store, pay_code, rid
from ..unit.test_store_codes import rasterize
from .helpers import count, fresh, post, text_of
from .test_store_api import Api, sign_in


@pytest.fixture
def store(village):
    return make_store(village)


@pytest.fixture
def household(village):
    return factories.household(village, opening=100, number="0101", head="李德胜").id


def villager_of(village, household_id):
    username = f"139{factories.next_id():08d}"
    return factories.user(village, "villager", resident=head_of(household_id), username=username)


# ---------------------------------------------------------------- /q/<token>


def test_q_takes_a_clerk_to_the_counter_with_the_code(client, store, household):
    sign_in(client, store.clerk)
    token = card_code(household)
    resp = client.get(f"/q/{token}")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/counter?code=")
    html = text_of(client.get(resp.headers["Location"]))
    assert token in html  # the counter looks it up as soon as it loads


def test_q_takes_the_owner_to_their_own_page(client, village, household):
    user = villager_of(village, household)
    sign_in(client, user.id)
    pay_token = pay_code(head_of(household).id).rsplit("/q/", 1)[1]
    for token in (card_code(household), pay_token):
        resp = client.get(f"/q/{token}")
        assert resp.status_code == 302 and resp.headers["Location"] == "/me"


def test_q_shows_anyone_else_a_neutral_page(client, village, household, login_as):
    token = card_code(household)
    for who in (None, "someone else"):
        if who:
            login_as("villager")
        resp = client.get(f"/q/{token}")
        html = text_of(resp)
        assert resp.status_code == 200
        assert "李德胜" not in html and "0101" not in html and "100" not in html
        assert "积分" in html
    assert client.get("/q/forged-token").status_code == 200


# ---------------------------------------------------------------- pay code


def test_pay_code_page_shows_a_qr_of_the_q_url_and_a_number(client, village, household):
    user = villager_of(village, household)
    sign_in(client, user.id)
    html = text_of(client.get("/me/code"))
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    [found] = zxingcpp.read_barcodes(rasterize(svg))
    assert found.text.startswith("http://localhost/q/")
    code = codes.parse(found.text)
    stored = db.session.scalar(select(PayCode).where(PayCode.number == code.number))
    assert code.kind == "paycode" and stored.resident_id == head_of(household).id
    number = re.search(r'id="number"[^>]*>([\d ]+)<', html).group(1)
    assert codes.parse(number).number == code.number
    assert "/static/store-paycode." in html
    data = client.get("/me/code.json").get_json()
    assert set(data) == {"svg", "number", "refresh_in"}
    assert 0 < data["refresh_in"] <= codes.REFRESH_SECONDS
    assert client.get("/me/code.json").headers["Cache-Control"] == "no-store"
    assert client.get("/me/code").headers["Cache-Control"] == "no-store"


def test_the_pay_code_page_reloaded_in_a_loop_does_not_fill_the_table(client, village, household):
    user = villager_of(village, household)
    sign_in(client, user.id)
    numbers = {client.get("/me/code.json").get_json()["number"] for _ in range(20)}
    assert len(numbers) == 1
    assert db.session.scalar(select(func.count(PayCode.id))) == 1


def test_pay_code_is_for_villagers_only(client, store):
    sign_in(client, store.clerk)
    assert client.get("/me/code").status_code == 403


# ---------------------------------------------------------------- cards


def test_cards_sheet_has_a_qr_per_household_and_no_phone(client, village, login_as):
    factories.household(village, number="0007", head="张秀英")
    with transaction():
        h = db.session.scalar(db.select(Household).where(Household.number == "0007"))
        head_of(h.id).phone = "13912345678"
    login_as("village_admin")
    html = text_of(client.get("/admin/cards"))
    assert "0007" in html and "张秀英" in html
    assert "13912345678" not in html
    assert "@media print" not in html and "data-print" in html and "/static/page-tools." in html
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    [found] = zxingcpp.read_barcodes(rasterize(svg))
    assert codes.parse(found.text).household_public_id == h.public_id


def test_reissue_makes_the_old_card_stop_working(client, store, household, login_as):
    old = card_code(household)
    login_as("village_admin")
    resp = post(client, f"/admin/cards/{household}/reissue")
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, household).card_version == 2
    api = Api(client, sign_in(client, store.clerk))
    resp = api.post("/counter/lookup", {"code": old})
    assert resp.status_code == 410 and resp.get_json()["error"] == "card_replaced"
    assert api.post("/counter/lookup", {"code": card_code(household)}).status_code == 200


def test_admin_sets_and_clears_the_card_pin(client, household, login_as):
    login_as("village_admin")
    assert post(client, f"/admin/cards/{household}/pin", {"pin": "12a4"}).status_code == 302
    fresh()
    assert db.session.get(Household, household).card_pin_hash is None
    post(client, f"/admin/cards/{household}/pin", {"pin": "1234"})
    fresh()
    assert db.session.get(Household, household).card_pin_hash.startswith(("scrypt:", "pbkdf2:"))
    post(client, f"/admin/cards/{household}/pin", {"pin": ""})
    fresh()
    assert db.session.get(Household, household).card_pin_hash is None


def test_another_villages_card_page_is_404(client, login_as):
    other = factories.village("other", "别村")
    oh = factories.household(other)
    login_as("village_admin")
    assert client.get(f"/admin/cards/{oh.id}").status_code == 404
    assert post(client, f"/admin/cards/{oh.id}/reissue").status_code == 404


# ---------------------------------------------------------------- venues, items, stock, gifts


def test_admin_creates_a_venue_and_an_item(client, village, login_as):
    login_as("village_admin")
    resp = post(
        client, "/admin/store", {"kind": "canteen", "name": "幸福食堂", "hours": "午 11:30"}
    )
    assert resp.status_code == 302
    venue_url = resp.headers["Location"]
    venue_id = int(venue_url.rsplit("/", 1)[1])
    resp = post(
        client,
        f"/admin/store/venues/{venue_id}/items/new",
        {
            "name": "午餐",
            "points": "8",
            "slot": "lunch",
            "daily_limit": "1",
            "active": "y",
            "low_stock": "5",
        },
    )
    assert resp.status_code == 302, text_of(resp)
    item = db.session.scalar(db.select(Item).where(Item.venue_id == venue_id))
    assert (item.name, item.points, item.slot, item.stock) == ("午餐", 8, "lunch", None)
    assert "午餐" in text_of(client.get(venue_url))
    bad = post(client, f"/admin/store/venues/{venue_id}/items/new", {"name": "", "points": "x"})
    assert bad.status_code == 422


def test_clerk_takes_stock_in_and_low_stock_shows(client, store):
    sign_in(client, store.clerk)
    url = f"/admin/store/venues/{store.shop}"
    page = text_of(client.get(url))
    assert "库存不足" not in page
    post(
        client,
        f"{url}/stock",
        {"item_id": store.oil, "action": "correct", "co-counted": "3", "co-reason": "破损"},
    )
    post(client, f"{url}/stock", {"item_id": store.rice, "in-qty": "5", "in-donor": "爱心企业"})
    fresh()
    assert db.session.get(Item, store.oil).stock == 3
    assert db.session.get(Item, store.rice).stock == 15
    page = text_of(client.get(url))
    assert "库存不足" in page and "爱心企业" in page and "破损" in page
    assert count(StockMove) == 4  # two opening stocks, a correction and a donation


def test_clerk_sees_only_the_own_venue(client, store):
    sign_in(client, store.clerk)
    assert client.get(f"/admin/store/venues/{store.canteen}").status_code == 403
    resp = post(
        client,
        f"/admin/store/venues/{store.canteen}/stock",
        {"item_id": store.lunch, "in-qty": "5"},
    )
    assert resp.status_code == 403
    assert client.get("/admin/store").status_code == 403
    assert client.get("/admin/cards").status_code == 403


def test_gift_form_credits_the_household(client, store, village, household):
    with transaction():
        db.session.get(Village, village.id).gifts_earn_points = True
    sign_in(client, store.cook)
    resp = post(
        client,
        f"/admin/store/venues/{store.canteen}/gift",
        {"gift-household": "0101", "gift-description": "柴火一担", "gift-points": "15"},
    )
    assert resp.status_code == 302
    fresh()
    assert db.session.get(Household, household).balance == 115


def test_admin_binds_a_clerk_to_a_venue(client, village, store, login_as):
    new = factories.user(village, "clerk")
    login_as("village_admin")
    post(client, f"/admin/store/venues/{store.canteen}/clerks", {"user_id": str(new.id)})
    fresh()
    assert db.session.get(User, new.id).venue_id == store.canteen


# ---------------------------------------------------------------- counter pages


def test_clerk_home_is_the_counter(client, store):
    sign_in(client, store.clerk)
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/counter"
    html = text_of(client.get("/counter"))
    assert "爱心超市" in html and "/static/store-counter." in html and 'name="csrf-token"' in html


def test_clerk_without_a_venue_is_told_so(client, village, login_as):
    login_as("clerk")
    assert "还没有绑定兑换点" in text_of(client.get("/counter"))


def test_today_page_voids_by_form(client, store, household):
    api = Api(client, sign_in(client, store.clerk))
    red = api.post(
        "/counter/redemptions",
        {
            "code": card_code(household),
            "lines": [{"item_id": store.rice, "qty": 1}],
            "request_id": rid(),
        },
    ).get_json()
    html = text_of(client.get("/counter/today"))
    assert f"#{red['id']}" in html and "李德胜" in html
    post(client, f"/counter/redemptions/{red['id']}/void")
    fresh()
    assert db.session.get(Redemption, red["id"]).voided_at is not None
    assert db.session.get(Household, household).balance == 100
    resp = post(client, f"/counter/redemptions/{red['id']}/void")
    assert "已经作废" in text_of(client.get(resp.headers["Location"]))


def test_nav_has_store_entries(client, store, village, household):
    sign_in(client, store.clerk)
    html = text_of(client.get("/counter"))
    assert "收银台" in html and "今日兑换" in html
    sign_in(client, villager_of(village, household).id)
    assert "动态码" in text_of(client.get("/me"))


def test_admin_finds_an_old_redemption_and_voids_it(client, store, household, login_as):
    api = Api(client, sign_in(client, store.clerk))
    red = api.post(
        "/counter/redemptions",
        {
            "code": card_code(household),
            "lines": [{"item_id": store.oil, "qty": 2}],
            "request_id": rid(),
        },
    ).get_json()
    with transaction():
        r = db.session.get(Redemption, red["id"])
        r.day = r.day.replace(year=r.day.year - 1)
    # The clerk may not void last year's redemption any more...
    resp = post(client, f"/counter/redemptions/{red['id']}/void")
    assert "只能作废" in text_of(client.get(resp.headers["Location"]))
    # ...the admin finds it by household number and may.
    login_as("village_admin")
    html = text_of(client.get("/admin/store/redemptions?household=0101"))
    assert f"#{red['id']}" in html and "李德胜" in html
    assert f"#{red['id']}" not in text_of(client.get("/admin/store/redemptions?household=9999"))
    next_url = "/admin/store/redemptions?household=0101"
    resp = post(client, f"/counter/redemptions/{red['id']}/void", {"next": next_url})
    assert resp.headers["Location"] == next_url
    fresh()
    assert db.session.get(Household, household).balance == 100
    assert db.session.get(Item, store.oil).stock == 50


def test_item_photo_is_checked_stored_and_shown(client, store, login_as):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (900, 600), (200, 30, 30)).save(buf, format="PNG")
    login_as("village_admin")
    form = {"name": "大米", "points": "10", "slot": "", "low_stock": "5", "active": "y"}
    resp = post(
        client,
        f"/admin/store/items/{store.rice}/edit",
        {**form, "photo": (io.BytesIO(buf.getvalue()), "rice.png")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, text_of(resp)
    fresh()
    photo_id = db.session.get(Item, store.rice).photo_id
    assert photo_id
    photo = client.get(f"/store/items/{store.rice}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.headers["Cache-Control"] == "private, no-cache" and photo.headers["ETag"]
    again = client.get(
        f"/store/items/{store.rice}/photo", headers={"If-None-Match": photo.headers["ETag"]}
    )
    assert again.status_code == 304
    # Pages link the photo under its id: that address is kept for a year.
    url = f"/store/items/{store.rice}/photo?v={photo_id}"
    assert url in text_of(client.get(f"/admin/store/venues/{store.shop}"))
    kept = client.get(url)
    assert kept.data == photo.data and "immutable" in kept.headers["Cache-Control"]
    assert "private" in kept.headers["Cache-Control"]
    bad = post(
        client,
        f"/admin/store/items/{store.oil}/edit",
        {**form, "name": "油", "photo": (io.BytesIO(b"not a picture"), "x.png")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    fresh()
    assert db.session.get(Item, store.oil).photo_id is None
    assert client.get(f"/store/items/{store.oil}/photo").status_code == 404
    other = factories.village("other", "别村")
    login_as("village_admin", of_village=other)
    assert client.get(f"/store/items/{store.rice}/photo").status_code == 404
