"""The counter API: statuses and bodies as the issue and /api/v1/openapi.json give them."""

import re

import pytest

from app.auth.models import User
from app.extensions import db
from app.households.models import Household
from app.store import codes, qr, services
from app.store.models import Item, Redemption

from .. import factories
from ..conftest import csrf_token
from ..services.test_store import age_pay_codes, card_code, head_of, make_store, pay_code, rid
from .helpers import count, fresh, snapshot


def sign_in(client, user_id: int) -> str:
    """Sign in as an existing user; returns the CSRF token for the X-CSRFToken header."""
    username = db.session.get(User, user_id).username
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    resp = client.post(
        "/login",
        data={
            "username": username,
            "password": factories.PASSWORD,
            "csrf_token": csrf_token(client),
        },
    )
    assert resp.status_code == 302
    html = client.get("/counter").get_data(as_text=True)
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    return m.group(1) if m else csrf_token(client)


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def get(self, path):
        return self.client.get("/api/v1" + path)

    def post(self, path, body=None, **kw):
        headers = {"X-CSRFToken": self.token, **kw.pop("headers", {})}
        return self.client.post("/api/v1" + path, json=body, headers=headers, **kw)


@pytest.fixture
def store(village):
    return make_store(village)


@pytest.fixture
def household(village):
    h = factories.household(village, opening=100, number="0101", head="李德胜")
    return h.id


@pytest.fixture
def api(client, store):
    return Api(client, sign_in(client, store.clerk))


def redeem_body(code, item_id, qty=1, **kw):
    return {"code": code, "lines": [{"item_id": item_id, "qty": qty}], "request_id": rid(), **kw}


def test_items_lists_the_clerks_venue(client, store):
    api = Api(client, sign_in(client, store.cook))
    body = api.get("/counter/items").get_json()
    assert {i["name"] for i in body["items"]} == {"午餐", "早餐"}
    assert all(i["stock"] is None and i["slot"] for i in body["items"])
    api = Api(client, sign_in(client, store.clerk))
    items = api.get("/counter/items").get_json()["items"]
    assert [(i["name"], i["points"], i["stock"], i["slot"]) for i in items] == [
        ("大米", 10, 10, None),
        ("油", 5, 50, None),
    ]


def test_lookup_of_a_card_shows_household_and_members(api, household):
    resp = api.post("/counter/lookup", {"code": card_code(household)})
    assert resp.status_code == 200
    body = resp.get_json()
    h = db.session.get(Household, household)
    assert body["household"] == {
        "public_id": h.public_id,
        "number": "0101",
        "head": "李德胜",
        "balance": 100,
        "stars": 0,
    }
    assert body["resident"] is None and body["source"] == "card"
    assert [r["name"] for r in body["residents"]] == ["李德胜"]
    assert body["pin_required"] is False


def test_lookup_of_a_pay_code_url_names_the_resident(api, household):
    r = head_of(household)
    url = pay_code(r.id)
    body = api.post("/counter/lookup", {"code": url}).get_json()
    assert body["resident"]["id"] == r.id and body["source"] == "paycode"
    number = codes.grouped(pay_code(r.id, typed=True))
    assert api.post("/counter/lookup", {"code": number}).status_code == 200


def test_lookup_statuses(api, store, household, village):
    r = head_of(household)
    assert api.post("/counter/lookup", {"code": "forged.token"}).status_code == 404
    code = pay_code(r.id)
    age_pay_codes(codes.ACCEPT_SECONDS + 1)
    expired = api.post("/counter/lookup", {"code": code})
    assert expired.status_code == 404 and expired.get_json()["error"] == "code_unknown"
    other = factories.village("other", "别村")
    oh = factories.household(other, opening=5)
    resp = api.post("/counter/lookup", {"code": card_code(oh.id)})
    assert resp.status_code == 403 and resp.get_json()["error"] == "other_village"
    assert "其他村" in resp.get_json()["message"]  # in the user's language
    assert api.post("/counter/lookup", {"code": ""}).status_code == 422
    assert api.post("/counter/lookup", {"nope": 1}).status_code == 422
    resp = api.client.post(
        "/api/v1/counter/lookup", data="not json", headers={"X-CSRFToken": api.token}
    )
    assert resp.status_code == 422


def test_redemption_is_created_once_per_request_id(api, store, household):
    code = pay_code(head_of(household).id)
    body = redeem_body(code, store.rice, 2)
    first = api.post("/counter/redemptions", body)
    assert first.status_code == 201, first.get_json()
    data = first.get_json()
    assert data["total"] == 20 and data["balance_after"] == 80
    assert data["lines"] == [
        {"item_id": store.rice, "name": "大米", "qty": 2, "points": 10, "subtotal": 20}
    ]
    again = api.post("/counter/redemptions", body)  # its pay code is used up by now
    assert again.status_code == 201 and again.get_json()["id"] == data["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(Redemption) == 1
    assert fresh() is None and db.session.get(Household, household).balance == 80
    used = api.post("/counter/redemptions", redeem_body(code, store.rice))
    assert used.status_code == 404 and used.get_json()["error"] == "code_unknown"
    reused = api.post("/counter/redemptions", {**body, "lines": [{"item_id": store.oil, "qty": 1}]})
    assert reused.status_code == 409 and reused.get_json()["error"] == "request_id_reused"
    assert count(Redemption) == 1


@pytest.mark.parametrize(
    "change, status, error",
    [
        (
            lambda b, s: (
                services.correct_stock(s.village_id, s.rice, 1, "盘点", None),
                b["lines"][0].update(qty=2),
            ),
            409,
            "out_of_stock",
        ),
        (
            lambda b, s: b.update(
                lines=[{"item_id": s.rice, "qty": 5}, {"item_id": s.oil, "qty": 11}]
            ),
            409,
            "insufficient_points",
        ),
        (lambda b, s: b.update(lines=[]), 422, "invalid"),
        (lambda b, s: b.update(lines=[{"item_id": s.rice, "qty": "2"}]), 422, "invalid"),
        (lambda b, s: b.update(request_id="short"), 422, "invalid"),
        (lambda b, s: b.pop("request_id"), 422, "invalid"),
        (lambda b, s: b.update(code="forged"), 404, "code_unknown"),
        (lambda b, s: b.update(lines=[{"item_id": s.lunch, "qty": 1}]), 422, "invalid"),
        (lambda b, s: b.update(resident_id="x"), 422, "invalid"),
    ],
)
def test_refused_redemptions_write_nothing(api, store, household, change, status, error):
    body = redeem_body(card_code(household), store.rice)
    change(body, store)
    before = snapshot()
    resp = api.post("/counter/redemptions", body)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"] == error and resp.get_json()["message"]
    assert snapshot() == before


def test_meal_limit_is_409(client, store, household):
    api = Api(client, sign_in(client, store.cook))
    code = card_code(household)
    assert api.post("/counter/redemptions", redeem_body(code, store.lunch)).status_code == 201
    resp = api.post("/counter/redemptions", redeem_body(code, store.lunch))
    assert resp.status_code == 409 and resp.get_json()["error"] == "meal_limit"


def test_the_counter_api_ends_with_the_session(client, store, household):
    """The counter's API reads who is signed in without Flask-Login's `User` (`sessions.who`),
    by the same rules: a session signed out elsewhere, expired, of a disabled login or from
    before a password reset is 401, and a scan with it writes nothing."""
    from sqlalchemy import delete, update

    from app.auth.models import UserSession
    from app.database import transaction

    body = redeem_body(card_code(household), store.rice)
    cases = {
        "signed out elsewhere": lambda: delete(UserSession),
        "expired": lambda: update(UserSession).values(expires_at=services.utcnow()),
        "disabled": lambda: update(User).where(User.id == store.clerk).values(is_enabled=False),
        "password reset": lambda: (
            update(User)
            .where(User.id == store.clerk)
            .values(session_version=User.session_version + 1)
        ),
    }
    for case, change in cases.items():
        with transaction():
            db.session.execute(update(User).values(is_enabled=True, session_version=1))
        api = Api(client, sign_in(client, store.clerk))
        assert api.get("/counter/items").status_code == 200, case
        with transaction():
            db.session.execute(change())
        before = count(Redemption)
        assert api.get("/counter/items").status_code == 401, case
        assert api.post("/counter/redemptions", body).status_code == 401, case
        assert count(Redemption) == before, case


def test_who_may_use_the_counter_api(client, store, household, login_as):
    body = redeem_body(card_code(household), store.rice)
    assert client.get("/api/v1/counter/items").status_code == 401
    login_as("villager")
    token = csrf_token(client, "/me")
    assert client.get("/api/v1/counter/items").status_code == 403
    resp = client.post("/api/v1/counter/redemptions", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 403
    login_as("village_admin")  # no venue
    token = csrf_token(client, "/admin/households/")
    resp = client.post("/api/v1/counter/redemptions", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 403 and resp.get_json()["error"] == "no_venue"
    assert count(Redemption) == 0


def test_post_without_the_csrf_header_is_refused(client, store, household):
    sign_in(client, store.clerk)
    resp = client.post(
        "/api/v1/counter/redemptions", json=redeem_body(card_code(household), store.rice)
    )
    assert resp.status_code == 400 and count(Redemption) == 0


def test_a_remembered_csrf_token_is_still_this_sessions_own(app, client, store, household):
    """A token checked once is remembered, but it opens only its own session: the same token
    in another browser's session, or changed by one byte, is refused and writes nothing."""
    api = Api(client, sign_in(client, store.clerk))
    code = card_code(household)
    assert api.post("/counter/redemptions", redeem_body(code, store.rice)).status_code == 201
    assert api.post("/counter/redemptions", redeem_body(code, store.rice)).status_code == 201
    before = count(Redemption)
    changed = api.token[:-2] + ("A" if api.token[-2] != "A" else "B") + api.token[-1]
    resp = Api(client, changed).post("/counter/redemptions", redeem_body(code, store.rice))
    assert resp.status_code == 400
    other = app.test_client()
    sign_in(other, store.clerk)  # the same clerk on another counter: its own session
    stolen = Api(other, api.token)
    assert stolen.post("/counter/redemptions", redeem_body(code, store.rice)).status_code == 400
    assert count(Redemption) == before
    assert api.post("/counter/redemptions", redeem_body(code, store.rice)).status_code == 201


def test_clerk_of_another_venue_cannot_void_and_void_twice_is_409(client, store, household):
    api = Api(client, sign_in(client, store.clerk))
    red = api.post(
        "/counter/redemptions", redeem_body(card_code(household), store.rice, 3)
    ).get_json()
    cook = Api(client, sign_in(client, store.cook))
    resp = cook.post(f"/counter/redemptions/{red['id']}/void")
    assert resp.status_code == 403 and resp.get_json()["error"] == "void_too_late"
    api = Api(client, sign_in(client, store.clerk))
    resp = api.post(f"/counter/redemptions/{red['id']}/void", {"reason": "拿错了"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert (
        body["voided"]
        and body["reversal"]["balance_after"] == 100
        and body["reversal"]["points"] == 30
    )
    assert fresh() is None and db.session.get(Item, store.rice).stock == 10
    again = api.post(f"/counter/redemptions/{red['id']}/void")
    assert again.status_code == 409 and again.get_json()["error"] == "already_voided"
    assert api.post("/counter/redemptions/99999/void").status_code == 404


def test_admin_voids_without_a_venue(client, store, household, login_as):
    api = Api(client, sign_in(client, store.clerk))
    red = api.post("/counter/redemptions", redeem_body(card_code(household), store.oil)).get_json()
    login_as("village_admin")
    token = csrf_token(client, "/admin/households/")
    resp = client.post(
        f"/api/v1/counter/redemptions/{red['id']}/void", headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 200 and resp.get_json()["reversal"]["balance_after"] == 100


def test_another_villages_clerk_cannot_touch_our_households(client, store, household):
    other = factories.village("other", "别村")
    o = make_store(other)
    api = Api(client, sign_in(client, o.clerk))
    resp = api.post("/counter/redemptions", redeem_body(card_code(household), o.rice))
    assert resp.status_code == 403 and resp.get_json()["error"] == "other_village"
    ours = Api(client, sign_in(client, store.clerk))
    red = ours.post("/counter/redemptions", redeem_body(card_code(household), store.oil)).get_json()
    api = Api(client, sign_in(client, o.clerk))
    assert api.post(f"/counter/redemptions/{red['id']}/void").status_code == 404


def test_card_pin_over_the_api(api, store, household, village):
    from app.database import transaction
    from app.villages.models import Village

    with transaction():
        db.session.get(Village, village.id).card_pin_required = True
    services.set_card_pin(village.id, household, "2468", None)
    code = card_code(household)
    assert api.post("/counter/lookup", {"code": code}).get_json()["pin_required"] is True
    resp = api.post("/counter/redemptions", redeem_body(code, store.oil))
    assert resp.status_code == 422 and resp.get_json()["error"] == "pin_required"
    resp = api.post("/counter/redemptions", redeem_body(code, store.oil, pin="1111"))
    assert resp.status_code == 403 and resp.get_json()["error"] == "wrong_pin"
    assert (
        api.post("/counter/redemptions", redeem_body(code, store.oil, pin="2468")).status_code
        == 201
    )


def test_photo_is_decoded_on_the_server(api, household):
    url = "http://localhost/q/" + card_code(household)
    photo = qr.png(url)
    resp = api.client.post(
        "/api/v1/counter/decode",
        data={"photo": (__import__("io").BytesIO(photo), "code.png")},
        headers={"X-CSRFToken": api.token},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200 and resp.get_json()["code"] == url
    resp = api.client.post(
        "/api/v1/counter/decode",
        data={"photo": (__import__("io").BytesIO(b"GIF89a not really"), "x.png")},
        headers={"X-CSRFToken": api.token},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422


def test_openapi_document_describes_the_counter_api(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths) >= {
        "/api/v1/counter/items",
        "/api/v1/counter/lookup",
        "/api/v1/counter/redemptions",
        "/api/v1/counter/redemptions/{id}/void",
    }
    statuses = set(paths["/api/v1/counter/redemptions"]["post"]["responses"])
    assert {"201", "403", "404", "409", "410", "422"} <= statuses
    assert doc["components"]["securitySchemes"]["csrf"]["name"] == "X-CSRFToken"


def test_the_ledger_lock_log_measures_without_changing_an_answer(
    app, api, store, household, tmp_path
):
    """LEDGER_LOCK_LOG (the counter benchmark's) writes one line per ledger lock: the village,
    the hold from sending the lock and the hold from its grant (on PostgreSQL both ends read on
    the server's clock). Measuring must never change what the clerk is told: a redemption the
    database refuses is still a 409, not a 500."""
    log = tmp_path / "locks.log"
    app.config["LEDGER_LOCK_LOG"] = str(log)
    try:
        code = card_code(household)
        ok = api.post("/counter/redemptions", redeem_body(code, store.rice, 2))
        assert ok.status_code == 201, ok.get_json()
        lines = [{"item_id": store.rice, "qty": 5}, {"item_id": store.oil, "qty": 11}]
        refused = api.post(
            "/counter/redemptions", {**redeem_body(code, store.rice), "lines": lines}
        )
        assert refused.status_code == 409 and refused.get_json()["error"] == "insufficient_points"
    finally:
        app.config["LEDGER_LOCK_LOG"] = ""
    lines = [line.split() for line in log.read_text().splitlines()]
    assert lines and all(len(f) == 3 and f[0] == str(store.village_id) for f in lines)
    held = [(float(f[1]), float(f[2])) for f in lines]
    assert all(
        0 < from_grant < 10_000 and 0 < from_sending < 10_000 for from_sending, from_grant in held
    )
    assert count(Redemption) == 1
