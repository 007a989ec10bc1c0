"""Signing in and out: passwords, villagers' phones, safe `next`, throttling kept in the
database, cookie flags and CSRF on sign-out."""

import re
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from app import create_app
from app.config import TestConfig
from app.database import utcnow
from app.extensions import db
from app.households.models import Resident
from app.ledger import services as ledger

from .. import factories
from .helpers import assert_chinese_error, error_messages, fresh, location_path, post, text_of


def sign_in(client, username, password=factories.PASSWORD, path="/login", **kw):
    return post(client, path, {"username": username, "password": password}, **kw)


@pytest.fixture
def admin(village):
    return factories.user(village, "village_admin", username="wang.admin")


def throttle(key: str):
    from app.auth.models import LoginThrottle

    fresh()
    return db.session.get(LoginThrottle, key)


# --- signing in and out -------------------------------------------------------------------


def test_sign_in_lands_on_the_roles_home_and_sign_out_ends_the_session(client, admin):
    resp = sign_in(client, "wang.admin")
    assert resp.status_code == 302 and location_path(resp) == "/"
    home = client.get("/")
    assert home.status_code == 302 and location_path(home) == "/admin/households/"
    assert client.get("/admin/households/").status_code == 200

    resp = post(client, "/logout")
    assert resp.status_code == 302 and location_path(resp) == "/login"
    resp = client.get("/admin/households/")
    assert resp.status_code == 302 and location_path(resp) == "/login"


def test_county_admin_lands_on_the_villages(client, village):
    factories.user(village, "county_admin", username="county")
    sign_in(client, "county")
    assert location_path(client.get("/")) == "/county/villages"


def test_villager_signs_in_with_the_phone_and_sees_the_households_balance(client, village):
    villager = factories.user(village, "villager")
    household_id = db.session.get(Resident, villager.resident_id).household_id
    ledger.award(village.id, household_id, 42, "清扫村道", None)
    resp = sign_in(client, villager.username)
    assert villager.username.isdigit() and len(villager.username) == 11
    assert resp.status_code == 302
    assert location_path(client.get("/")) == "/me"
    me = text_of(client.get("/me"))
    assert 'id="balance">42<' in me and "清扫村道" in me


def test_username_is_trimmed_but_the_password_is_not(client, admin):
    assert sign_in(client, "  wang.admin ").status_code == 302
    post(client, "/logout")
    assert sign_in(client, "wang.admin", " " + factories.PASSWORD).status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_chinese_message(client, admin):
    wrong = assert_chinese_error(sign_in(client, "wang.admin", "not-the-password"), 401)
    unknown = assert_chinese_error(sign_in(client, "nobody", "not-the-password"), 401)
    assert wrong == unknown
    assert client.get("/admin/households/").status_code == 302  # still signed out


@pytest.mark.parametrize(
    "data", [{"username": "", "password": "x"}, {"username": "wang.admin", "password": ""}]
)
def test_empty_field_gets_a_chinese_message(client, admin, data):
    assert_chinese_error(post(client, "/login", data), 422)


def test_sign_in_without_csrf_token_is_refused(client, admin):
    resp = sign_in(client, "wang.admin", token=False)
    assert_chinese_error(resp, 400)
    assert client.get("/admin/households/").status_code == 302


def test_logout_is_a_post_with_csrf(client, admin):
    sign_in(client, "wang.admin")
    assert client.get("/logout").status_code == 405
    assert_chinese_error(post(client, "/logout", token=False), 400)
    assert client.get("/admin/households/").status_code == 200  # still signed in
    assert post(client, "/logout").status_code == 302
    assert client.get("/admin/households/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, admin):
    resp = sign_in(client, "wang.admin")
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, resp.headers
    flags = [part.strip().lower() for part in cookies[-1].split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags


# --- next ---------------------------------------------------------------------------------


def test_next_returns_to_a_local_page(client, admin):
    resp = sign_in(client, "wang.admin", path="/login?next=/admin/settings?tab=1")
    assert resp.headers["Location"] == "/admin/settings?tab=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "/\t/evil.example/",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_next_never_leads_to_another_site(client, admin, target):
    resp = client.post(
        "/login",
        query_string={"next": target},
        data={
            "username": "wang.admin",
            "password": factories.PASSWORD,
            "csrf_token": _token(client),
        },
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"


def test_language_switch_never_leads_to_another_site(client):
    resp = client.get("/lang/en", query_string={"next": "/\\evil.example"})
    assert resp.headers["Location"] == "/"
    resp = client.get("/lang/en", query_string={"next": "/login"})
    assert resp.headers["Location"] == "/login"


def _token(client):
    from ..conftest import csrf_token

    return csrf_token(client)


# --- throttling ---------------------------------------------------------------------------


def _fail(client, username, times, **kw):
    for _ in range(times):
        assert sign_in(client, username, "wrong-password", **kw).status_code == 401


def _expire_window(key: str) -> None:
    from app.auth.models import LoginThrottle

    db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(window_start=utcnow() - timedelta(minutes=16))
    )
    db.session.commit()


def test_account_locks_after_max_failures_even_for_the_right_password(app, client, admin):
    limit = app.config["LOGIN_MAX_FAILURES"]
    _fail(client, "wang.admin", limit)
    resp = sign_in(client, "wang.admin")
    [message] = assert_chinese_error(resp, 429)
    assert str(app.config["LOGIN_LOCK_MINUTES"]) in message
    assert client.get("/admin/households/").status_code == 302

    row = throttle("user:wang.admin")
    assert row.failures == limit
    assert row.locked_until > utcnow() + timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] - 1)


def test_the_lock_is_in_the_database_so_another_app_instance_refuses_too(
    app, client, admin, database_url
):
    _fail(client, "wang.admin", app.config["LOGIN_MAX_FAILURES"])
    other = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))
    try:
        other_client = other.test_client()
        resp = sign_in(other_client, "wang.admin")
        assert resp.status_code == 429
        assert other_client.get("/admin/households/").status_code == 302
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_lock_ends_after_the_lock_period(app, client, admin):
    _fail(client, "wang.admin", app.config["LOGIN_MAX_FAILURES"])
    assert sign_in(client, "wang.admin").status_code == 429
    _expire_window("user:wang.admin")
    assert sign_in(client, "wang.admin").status_code == 302
    row = throttle("user:wang.admin")
    assert (row.failures, row.locked_until) == (0, None)


def test_a_right_password_resets_the_accounts_failure_count(app, client, admin):
    limit = app.config["LOGIN_MAX_FAILURES"]
    _fail(client, "wang.admin", limit - 1)
    assert sign_in(client, "wang.admin").status_code == 302
    post(client, "/logout")
    client.delete_cookie("vp_device")  # as a stranger's browser again
    _fail(client, "wang.admin", limit - 1)
    assert sign_in(client, "wang.admin").status_code == 302


def test_lock_on_one_account_leaves_other_accounts_alone(app, client, admin, village):
    factories.user(village, "scorer", username="grid.li")
    _fail(client, "wang.admin", app.config["LOGIN_MAX_FAILURES"])
    assert sign_in(client, "grid.li").status_code == 302


def test_a_guesser_at_the_village_office_does_not_lock_out_the_admins_own_browser(
    app, client, admin
):
    """Behind one address (the office's router, a proxy) a stranger guesses the admin's password
    until the account and the address are locked for strangers. The admin's browser, which
    signed in before, has a budget of its own and still gets in."""
    assert sign_in(client, "wang.admin").status_code == 302
    post(client, "/logout")
    limit = app.config["LOGIN_MAX_FAILURES"]
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = limit + 2
    stranger = app.test_client()
    _fail(stranger, "wang.admin", limit)
    _fail(stranger, "guess1", 2)
    assert sign_in(stranger, "wang.admin").status_code == 429  # the account, for strangers
    assert sign_in(stranger, "guess2", "x-password").status_code == 429  # the address too
    assert sign_in(client, "wang.admin").status_code == 302  # the admin's own browser


def test_a_known_browser_has_its_own_exact_budget(app, client, admin):
    assert sign_in(client, "wang.admin").status_code == 302
    post(client, "/logout")
    _fail(client, "wang.admin", app.config["LOGIN_MAX_FAILURES"])
    assert sign_in(client, "wang.admin").status_code == 429  # this browser is slowed too
    assert throttle("user:wang.admin").failures == 0  # but strangers' budget was not touched
    assert sign_in(app.test_client(), "wang.admin").status_code == 302


def test_a_forged_device_cookie_is_a_stranger(app, client, admin):
    client.set_cookie("vp_device", "eyJ3YW5nLmFkbWluIjoiYWJjIn0.forged")
    _fail(client, "wang.admin", app.config["LOGIN_MAX_FAILURES"])
    assert throttle("user:wang.admin").failures == app.config["LOGIN_MAX_FAILURES"]


def test_too_many_failures_from_one_address_lock_that_address_for_strangers(
    app, client, admin, village
):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for name in ("guess1", "guess2", "guess3"):  # different accounts, one address
        _fail(client, name, 1)
    resp = sign_in(client, "wang.admin")
    assert_chinese_error(resp, 429)
    row = throttle("addr:127.0.0.1")
    assert row.failures == 3 and row.locked_until > utcnow()
    assert throttle("user:wang.admin").failures == 0  # nothing was tried on the account

    elsewhere = app.test_client()
    resp = sign_in(elsewhere, "wang.admin", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert resp.status_code == 302


def test_failures_are_not_counted_for_a_locked_account(app, client, admin):
    limit = app.config["LOGIN_MAX_FAILURES"]
    _fail(client, "wang.admin", limit)
    for _ in range(3):
        assert sign_in(client, "wang.admin", "wrong-password").status_code == 429
    assert throttle("user:wang.admin").failures == limit
    assert not error_messages(client.get("/login"))


def test_disabled_account_cannot_sign_in(client, admin, village):
    from app.auth.services import set_enabled

    other_admin = factories.user(village, "village_admin")
    set_enabled(village.id, admin.id, False, other_admin.id)
    disabled = assert_chinese_error(sign_in(client, "wang.admin"), 401)
    # The same words as a wrong password: the page does not tell who has an account.
    assert disabled == assert_chinese_error(sign_in(client, "nobody", "x-password"), 401)
    assert client.get("/admin/households/").status_code == 302


def test_an_unknown_username_costs_a_password_check_too(client, admin, monkeypatch):
    """The time of the answer must not tell which phone numbers have accounts: a wrong name is
    checked against a password hash like a wrong password is."""
    from app.auth import services

    checked = []
    real = services.check_password_hash
    monkeypatch.setattr(
        services, "check_password_hash", lambda h, p: checked.append(h) or real(h, p)
    )
    sign_in(client, "wang.admin", "wrong-password")
    sign_in(client, "13999999999", "wrong-password")
    assert len(checked) == 2
    assert checked[0].split("$")[0] == checked[1].split("$")[0]  # the same method and cost


def test_a_full_width_phone_signs_in(client, village):
    villager = factories.user(village, "villager")
    wide = villager.username.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert sign_in(client, wide).status_code == 302


def _concurrent_sign_ins(live_server, username, password, attempts):
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []

    def attempt() -> None:
        with requests.Session() as s:
            html = s.get(live_server + "/login", timeout=30).text
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
            barrier.wait()
            resp = s.post(
                live_server + "/login",
                data={"username": username, "password": password, "csrf_token": token},
                allow_redirects=False,
                timeout=30,
            )
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


@pytest.mark.server
def test_concurrent_wrong_passwords_on_several_workers_are_limited_exactly(app, admin, live_server):
    """Twelve wrong passwords at once through gunicorn's four workers: exactly the limit (5) are
    checked and refused as wrong, the other 7 are refused as locked without being checked."""
    limit = app.config["LOGIN_MAX_FAILURES"]
    statuses = _concurrent_sign_ins(live_server, "wang.admin", "wrong", 12)
    assert sorted(statuses) == [401] * limit + [429] * (12 - limit), statuses
    assert throttle("user:wang.admin").failures == limit
    assert _concurrent_sign_ins(live_server, "wang.admin", factories.PASSWORD, 1) == [429]


# --- sessions live on the server ------------------------------------------------------------


def _session_cookie(client):
    return client.get_cookie("session").value


def test_a_cookie_copied_before_sign_out_opens_nothing_after(app, client, admin):
    sign_in(client, "wang.admin")
    copied = _session_cookie(client)
    assert post(client, "/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied)
    resp = thief.get("/admin/settings")
    assert resp.status_code == 302 and location_path(resp) == "/login"


def test_a_cookie_checked_once_is_still_checked_for_age_change_and_key(
    app, client, admin, monkeypatch
):
    """The session cookie's signature is checked once per process and remembered: a second
    request with the same cookie is signed in without checking again, but the cookie still
    expires on time, a copy changed by one byte is checked (and refused), and a new secret
    key refuses the cookie unless the old one is kept as a fallback."""
    import app.security as security

    sign_in(client, "wang.admin")
    assert client.get("/admin/settings").status_code == 200  # checked, remembered
    assert client.get("/admin/settings").status_code == 200  # remembered
    cookie = _session_cookie(client)

    changed = app.test_client()
    changed.set_cookie("session", cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1])
    assert changed.get("/admin/settings").status_code == 302

    later = time.time() + app.permanent_session_lifetime.total_seconds() + 5
    monkeypatch.setattr(security.time, "time", lambda: later)
    assert client.get("/admin/settings").status_code == 302  # expired, though remembered
    monkeypatch.undo()
    client.set_cookie("session", cookie)
    assert client.get("/admin/settings").status_code == 200

    old = app.secret_key
    app.secret_key = "a-new-secret-key-for-this-test"
    assert client.get("/admin/settings").status_code == 302
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    client.set_cookie("session", cookie)
    assert client.get("/admin/settings").status_code == 200


def test_a_reset_or_disabled_login_ends_every_session(app, client, admin, village):
    from app.auth.services import reset_password, set_enabled

    other = factories.user(village, "village_admin")
    phone, pc = app.test_client(), app.test_client()
    sign_in(phone, "wang.admin")
    sign_in(pc, "wang.admin")
    reset_password(village.id, admin.id, "new-password-1", other.id)
    for c in (phone, pc):
        assert c.get("/admin/settings").status_code == 302
    sign_in(phone, "wang.admin", "new-password-1")
    assert phone.get("/admin/settings").status_code == 200
    set_enabled(village.id, admin.id, False, other.id)
    assert phone.get("/admin/settings").status_code == 302


def test_changing_the_own_password_signs_out_the_other_devices(app, client, admin):
    other_device = app.test_client()
    sign_in(other_device, "wang.admin")
    sign_in(client, "wang.admin")
    wrong = post(
        client, "/account/password", {"current": "nope-nope", "password": "brand-new-pass"}
    )
    assert_chinese_error(wrong, 422)
    resp = post(
        client,
        "/account/password",
        {"current": factories.PASSWORD, "password": "brand-new-pass"},
    )
    assert resp.status_code == 302
    assert client.get("/admin/settings").status_code == 200  # this device stays signed in
    assert other_device.get("/admin/settings").status_code == 302
    post(client, "/logout")
    assert sign_in(client, "wang.admin", "brand-new-pass").status_code == 302


def test_a_villager_stays_signed_in_for_months_staff_until_the_browser_closes(client, village):
    villager = factories.user(village, "villager")
    resp = sign_in(client, villager.username)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session="))
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires, cookie  # WeChat closing does not sign the villager out
    from email.utils import parsedate_to_datetime

    days = (parsedate_to_datetime(expires.group(1)).replace(tzinfo=None) - utcnow()).days
    assert 170 <= days <= 180
    post(client, "/logout")
    factories.user(village, "clerk", username="shop.li")
    resp = sign_in(client, "shop.li")
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Expires" not in cookie


def test_an_expired_server_session_is_signed_out(client, admin):
    from app.auth.models import UserSession

    sign_in(client, "wang.admin")
    db.session.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/admin/settings").status_code == 302
