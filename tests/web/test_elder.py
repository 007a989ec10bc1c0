"""长辈版 per villager: offered once on /me after the first sign-in, a switch on every villager
page, remembered on the user; and the villager's long sign-in ends with a reset everywhere."""

import pytest

from app.auth.models import User
from app.extensions import db

from .. import factories
from .helpers import fresh, post, text_of
from .test_scoring import make_villager, sign_in


@pytest.fixture
def villager(village):
    h = factories.household(village, number="0001", head="李桂英")
    return make_villager(village, h, "13900000001")


def test_the_elder_version_is_offered_once_and_remembered(client, villager):
    sign_in(client, villager.username)
    page = text_of(client.get("/me"))
    assert "要用大字和大按钮吗" in page and 'class="elder"' not in page
    resp = post(client, "/me/elder", {"on": "1", "next": "/me"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/me"
    page = text_of(client.get("/me"))
    assert '<html lang="zh-CN" class="elder">' in page
    assert "要用大字和大按钮吗" not in page  # asked once
    assert "标准版" in page  # the way back, on every page
    for path in ("/me/code", "/me/claims", "/me/claims/new", "/me/objections"):
        assert 'class="elder"' in text_of(client.get(path)), path
    # Remembered on the user, not the browser: another phone gets it too.
    sign_in(client, villager.username)
    assert 'class="elder"' in text_of(client.get("/me"))
    post(client, "/me/elder", {"on": "0", "next": "/me/code"})
    fresh()
    user = db.session.get(User, villager.id)
    assert user.elder_mode is False and user.elder_offered is True
    assert 'class="elder"' not in text_of(client.get("/me"))


def test_declining_the_offer_also_answers_it(client, villager):
    sign_in(client, villager.username)
    post(client, "/me/elder", {"on": "0"})
    page = text_of(client.get("/me"))
    assert "要用大字和大按钮吗" not in page and "长辈版" in page


def test_the_switch_never_leads_to_another_site(client, villager):
    sign_in(client, villager.username)
    resp = post(client, "/me/elder", {"on": "1", "next": "//evil.example/x"})
    assert resp.headers["Location"] == "/me"


def test_the_switch_needs_the_csrf_token(client, villager):
    sign_in(client, villager.username)
    resp = post(client, "/me/elder", {"on": "1"}, token=False)
    assert resp.status_code == 400
    fresh()
    assert db.session.get(User, villager.id).elder_mode is False


@pytest.mark.parametrize("role", ["village_admin", "scorer", "clerk"])
def test_the_switch_is_the_villagers(client, login_as, role):
    user = login_as(role)
    assert post(client, "/me/elder", {"on": "1"}).status_code == 403
    fresh()
    assert db.session.get(User, user.id).elder_mode is False
    assert "elder-switch" not in text_of(client.get("/account/password"))


def test_signed_out_the_switch_asks_to_sign_in(client):
    resp = post(client, "/me/elder", {"on": "1"})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_reset_ends_the_villagers_long_sign_in_on_every_phone(app, client, village, villager):
    """Item 4 of issue 10 (done in app/auth/sessions.py): a villager stays signed in for
    months, but a password reset by the village committee ends it on every phone."""
    from app.auth.services import reset_password, set_enabled

    admin = factories.user(village, "village_admin")
    phone, old_phone = app.test_client(), app.test_client()
    sign_in(phone, villager.username)
    sign_in(old_phone, villager.username)
    assert phone.get("/me").status_code == 200
    reset_password(village.id, villager.id, "new-password-1", admin.id)
    for c in (phone, old_phone):
        assert c.get("/me").status_code == 302
    post(phone, "/login", {"username": villager.username, "password": "new-password-1"})
    assert phone.get("/me").status_code == 200
    set_enabled(village.id, villager.id, False, admin.id)
    assert phone.get("/me").status_code == 302
