"""What the attacker's round found and what must keep holding: security headers, the client's
real address behind trusted proxies, Secure cookies over HTTPS, clear 4xx (never a 500) for input
no database can hold, public notices that expire, names without invisible tricks, chain heads long
enough not to be forged, verify covering points earned per year, and exact limits."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import create_app
from app.config import TestConfig
from app.database import utcnow
from app.extensions import db
from app.households.models import Household
from app.ledger import services as ledger
from app.ledger.chain import verify
from app.ledger.models import HouseholdYear
from app.scoring import services as scoring
from app.scoring.models import NoticeItem, Proposal
from app.scoring.services import MAX_OPEN_CLAIMS, RuleData
from app.villages.models import Village

from .. import factories
from .helpers import HAN, assert_chinese_error, post, snapshot, text_of
from .test_scoring import TODAY, make_villager, scene, sign_in  # noqa: F401 - the fixture

# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/no-such-page", "/api/v1/openapi.json"])
def test_every_response_carries_the_security_headers(client, path):
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP: no HSTS


def test_no_page_has_inline_script_or_style_attributes(client, login_as):
    """What the CSP would block: inline scripts, event handlers, style attributes."""
    import re

    login_as("village_admin")
    for path in ("/admin/households/", "/admin/settings", "/scoring/", "/admin/cards"):
        html = text_of(client.get(path))
        scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not scripts, (path, scripts)
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"\sstyle=", html), path


def _proxied_app(database_url, proxies: int):
    config = type(
        "C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url, "TRUSTED_PROXIES": proxies}
    )
    return create_app(config)


def test_behind_a_trusted_proxy_the_client_address_and_https_are_believed(
    app, village, database_url
):
    from app.auth.models import LoginThrottle

    proxied = _proxied_app(database_url, 1)
    try:
        c = proxied.test_client()
        https = {
            "X-Forwarded-For": "203.0.113.5",
            "X-Forwarded-Proto": "https",
            "Referer": "https://localhost/login",  # Flask-WTF checks it over HTTPS
        }
        page = c.get("/login", headers=https)
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        cookie = next(h for h in page.headers.getlist("Set-Cookie") if h.startswith("session="))
        assert "Secure" in cookie
        from ..conftest import csrf_token

        resp = c.post(
            "/login",
            data={"username": "nobody", "password": "x", "csrf_token": csrf_token(c)},
            headers=https,
        )
        assert resp.status_code == 401
        db.session.rollback()
        assert db.session.get(LoginThrottle, "addr:203.0.113.5") is not None
    finally:
        with proxied.app_context():
            db.session.remove()
            db.engine.dispose()


def test_without_trusted_proxies_forwarded_headers_are_ignored(client, village):
    from app.auth.models import LoginThrottle

    resp = post(
        client,
        "/login",
        {"username": "nobody", "password": "x"},
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
    )
    assert resp.status_code == 401
    assert "Strict-Transport-Security" not in resp.headers
    db.session.rollback()
    assert db.session.get(LoginThrottle, "addr:203.0.113.9") is None
    assert db.session.get(LoginThrottle, "addr:127.0.0.1") is not None


# --- input no database can hold: a clear 4xx, nothing written -----------------------------------


def test_ids_beyond_64_bits_are_not_found_or_refused(client, village, login_as):
    assert client.get(f"/v/{village.code}/notices/{10**30}").status_code == 404
    resp = client.get(f"/v/{village.code}/notices", query_string={"head": f"{10**26}:abcdef"})
    assert resp.status_code == 200 and "12" in text_of(resp)
    login_as("village_admin")
    assert client.get(f"/admin/households/{10**30}").status_code == 404
    resp = client.get("/admin/store/redemptions", query_string={"before": str(10**30)})
    assert resp.status_code in (200, 422) and resp.status_code != 500


def test_a_huge_number_in_json_is_refused_in_chinese(client, village):
    from ..services.test_store import make_store
    from .test_store_api import Api
    from .test_store_api import sign_in as api_sign_in

    store = make_store(village)
    api = Api(client, api_sign_in(client, store.clerk))
    body = {"code": "x", "lines": [{"item_id": 10**30, "qty": 1}], "request_id": "r" * 10}
    resp = api.post("/counter/redemptions", body)
    assert resp.status_code == 422 and HAN.search(resp.get_json()["message"])
    deep = "[" * 5000 + "]" * 5000
    resp = api.client.post(
        "/api/v1/counter/lookup",
        data=deep,
        headers={"X-CSRFToken": api.token, "Content-Type": "application/json"},
    )
    assert resp.status_code in (400, 422) and HAN.search(resp.get_json()["message"])


@pytest.mark.parametrize(
    "path, data",
    [
        ("/login", {"username": "wang\x00", "password": "x"}),
        ("/admin/households/new", {"number": "9\x009", "head_name": "王"}),
    ],
)
def test_a_nul_byte_in_a_form_is_refused_and_writes_nothing(client, login_as, path, data):
    login_as("village_admin")
    before = snapshot()
    assert_chinese_error(post(client, path, data), 422)
    assert snapshot() == before


def test_a_nul_byte_in_the_address_is_refused(client, village):
    resp = client.get(f"/v/{village.code}/notices?head=1%00:abc")
    assert resp.status_code == 422 and HAN.search(text_of(resp))


# --- public notices -------------------------------------------------------------------------------


def test_a_cancelled_item_is_never_public(client, village, scene):  # noqa: F811
    scoring.resolve_objection(village.id, scene["o"], uphold=True, resolution="属实", actor_id=None)
    url = f"/v/{village.code}/notices/{scene['i']}"
    assert client.get(url).status_code == 404  # anyone
    sign_in(client, scene["objector"])
    assert client.get(url).status_code == 200  # whoever objected sees the outcome


def test_a_posted_item_leaves_the_public_board_after_the_villages_period(
    client,
    village,
    scene,  # noqa: F811
):
    scoring.resolve_objection(
        village.id, scene["o"], uphold=False, resolution="不属实", actor_id=None
    )
    item = db.session.get(NoticeItem, scene["i"])
    scoring.post_due(now=item.notice_until + timedelta(seconds=1))
    url = f"/v/{village.code}/notices/{scene['i']}"
    assert client.get(url).status_code == 200
    db.session.execute(
        update(NoticeItem)
        .where(NoticeItem.id == scene["i"])
        .values(notice_until=utcnow() - timedelta(days=31))
    )
    db.session.commit()
    assert client.get(url).status_code == 404  # 30 days after its notice: not public any more
    sign_in(client, scene["owner"])
    assert client.get(url).status_code == 200  # the village's own users still see it


# --- names ----------------------------------------------------------------------------------------


def test_invisible_names_are_refused_and_overrides_dropped(client, login_as):
    login_as("village_admin")
    resp = post(client, "/admin/households/new", {"number": "0901", "head_name": "\u200b\u200d"})
    assert_chinese_error(resp, 422)
    resp = post(client, "/admin/households/new", {"number": "0902", "head_name": "王五\u202egnaw"})
    assert resp.status_code == 302
    db.session.rollback()
    h = db.session.scalar(select(Household).where(Household.number == "0902"))
    assert h.head_name == "王五gnaw"


def test_a_full_width_phone_is_stored_as_digits(client, login_as):
    login_as("village_admin")
    post(
        client,
        "/admin/households/new",
        {"number": "0903", "head_name": "李", "head_phone": "１３９-７１２３-００４９"},
    )
    db.session.rollback()
    h = db.session.scalar(select(Household).where(Household.number == "0903"))
    assert h.residents[0].phone == "13971230049"


# --- the ledger's checks --------------------------------------------------------------------------


def test_short_chain_heads_are_refused_with_why(client, runner, village):
    h = factories.household(village, opening=10)
    head = db.session.get(Village, village.id).ledger_head
    resp = client.get(f"/v/{village.code}/notices", query_string={"head": f"1:{head[:6]}"})
    assert "12" in text_of(resp) and "伪造" in text_of(resp)
    resp = client.get(f"/v/{village.code}/notices", query_string={"head": f"1:{head[:12]}"})
    assert 'id="check-result"' in text_of(resp)
    result = runner.invoke(args=["ledger", "verify", "--village", village.code, "--head", "1:a"])
    assert result.exit_code == 2 and "12" in result.output
    assert h.balance == 10


def test_verify_catches_an_edit_of_points_earned_per_year(app, village):
    h = factories.household(village)
    ledger.award(village.id, h.id, 20, "清洁日", None)
    assert verify() == []
    db.session.execute(update(HouseholdYear).values(earned=HouseholdYear.earned + 100))
    db.session.commit()
    [problem] = verify(full=True)
    assert "points earned" in str(problem)


# --- exact limits -------------------------------------------------------------------------------


def test_concurrent_claims_stop_exactly_at_the_limit(app, village):
    h = factories.household(village)
    villager = make_villager(village, h, "13911112222")
    rule = scoring.save_rule(village.id, RuleData("public_service", "清洁日", 5), None)
    vid, uid, rid = village.id, villager.id, rule.id
    results = []

    def claim():
        with app.app_context():
            try:
                scoring.create_claim(vid, uid, rule_id=rid, occurred_on=TODAY, note="扫地")
                results.append("ok")
            except Exception as e:  # noqa: BLE001 - counted below
                results.append(type(e).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=claim) for _ in range(2 * MAX_OPEN_CLAIMS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == MAX_OPEN_CLAIMS, results
    assert set(results) == {"ok", "InvalidInput"}
    db.session.rollback()
    assert db.session.scalar(select(func.count(Proposal.id))) == MAX_OPEN_CLAIMS


def test_concurrent_wrong_pins_are_compared_exactly_five_times(app, village):
    from app.database import transaction
    from app.store import services as store
    from app.store.errors import PinLocked, WrongPin

    from ..services.test_store import card_code, make_store

    s = make_store(village)
    h = factories.household(village, opening=100)
    with transaction():
        db.session.get(Village, village.id).card_pin_required = True
    store.set_card_pin(village.id, h.id, "4321", None)
    code = card_code(h.id)
    results = []

    def attempt():
        with app.app_context():
            try:
                store.redeem(
                    s.village_id,
                    s.shop,
                    s.clerk,
                    code,
                    [{"item_id": s.oil, "qty": 1}],
                    f"req-{threading.get_ident()}-x",
                    pin="0000",
                )
            except (WrongPin, PinLocked) as e:
                results.append(type(e).__name__)
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["PinLocked"] * 11 + ["WrongPin"] * store.PIN_MAX_FAILURES


def test_the_void_forms_next_never_leaves_the_site(client, village, login_as):
    login_as("village_admin")
    resp = post(client, "/counter/redemptions/1/void", {"next": "/\t/evil.example"})
    assert resp.status_code == 302 and "evil" not in resp.headers["Location"]
