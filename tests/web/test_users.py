"""A village admin manages the village's logins: create, reset a password, (de)activate."""

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.villages.models import AuditLog

from .. import factories
from .helpers import assert_chinese_error, count, fresh, location_path, post, snapshot, text_of


@pytest.fixture
def admin(login_as):
    return login_as("village_admin")


def sign_in(client, username: str, password: str):
    return post(client, "/login", {"username": username, "password": password})


def user_named(username: str) -> User | None:
    fresh()
    return db.session.scalar(select(User).where(User.username == username))


def test_admin_creates_a_scorer_who_can_sign_in(app, client, admin, village):
    resp = post(
        client,
        "/admin/users/new",
        {
            "username": "grid.wang",
            "display_name": "王网格",
            "role": "scorer",
            "password": "scorer-pass",
        },
    )
    assert resp.status_code == 302 and location_path(resp) == "/admin/users"
    user = user_named("grid.wang")
    assert (user.role, user.village_id, user.display_name) == ("scorer", village.id, "王网格")
    assert user.password_hash != "scorer-pass"
    audit = db.session.scalar(select(AuditLog).where(AuditLog.target == f"user:{user.id}"))
    assert (audit.action, audit.user_id, audit.village_id) == ("user.create", admin.id, village.id)
    assert "grid.wang" in text_of(client.get("/admin/users"))

    phone = app.test_client()
    assert sign_in(phone, "grid.wang", "scorer-pass").status_code == 302
    assert phone.get("/admin/households/").status_code == 200


GOOD_USER = {"username": "clerk.li", "display_name": "", "role": "clerk", "password": "long-pass1"}


@pytest.mark.parametrize(
    "data",
    [
        dict(GOOD_USER, username=""),
        dict(GOOD_USER, username="has space"),
        dict(GOOD_USER, username="王五"),
        dict(GOOD_USER, username="x" * 41),
        dict(GOOD_USER, password="short"),
        dict(GOOD_USER, password=""),
        dict(GOOD_USER, username="shuangtang-first-admin"),  # taken
        dict(GOOD_USER, role="county_admin"),  # not a role a village admin may give
        dict(GOOD_USER, role="villager"),  # villagers get logins from their household
    ],
    ids=[
        "empty-name",
        "space",
        "chinese-name",
        "too-long",
        "short-password",
        "no-password",
        "taken",
        "county-role",
        "villager-role",
    ],
)
def test_bad_new_user_gets_a_chinese_message_and_writes_nothing(client, admin, data):
    before = snapshot()
    assert_chinese_error(post(client, "/admin/users/new", data), 422)
    assert snapshot() == before


def test_username_taken_in_another_village_is_refused(client, admin, village):
    other = factories.village("xiwan", "西湾村")
    factories.user(other, "scorer", username="grid.zhao")
    before = count(User)
    assert_chinese_error(post(client, "/admin/users/new", dict(GOOD_USER, username="grid.zhao")))
    assert count(User) == before


def test_reset_password_signs_the_users_open_sessions_out(app, client, admin, village):
    scorer = factories.user(village, "scorer")
    phone = app.test_client()
    assert sign_in(phone, scorer.username, factories.PASSWORD).status_code == 302
    assert phone.get("/admin/households/").status_code == 200

    resp = post(client, f"/admin/users/{scorer.id}/password", {"password": "brand-new-pass"})
    assert resp.status_code == 302

    resp = phone.get("/admin/households/")
    assert resp.status_code == 302 and location_path(resp) == "/login"
    assert sign_in(phone, scorer.username, factories.PASSWORD).status_code == 401
    assert sign_in(phone, scorer.username, "brand-new-pass").status_code == 302
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "user.reset_password"))
    assert (audit.user_id, audit.target) == (admin.id, f"user:{scorer.id}")


def test_reset_password_refuses_a_short_password(client, admin, village):
    scorer = factories.user(village, "scorer")
    before = snapshot()
    assert_chinese_error(post(client, f"/admin/users/{scorer.id}/password", {"password": "1234"}))
    assert snapshot() == before


def test_deactivated_user_is_signed_out_and_cannot_sign_in(app, client, admin, village):
    clerk = factories.user(village, "clerk")
    counter = app.test_client()
    assert sign_in(counter, clerk.username, factories.PASSWORD).status_code == 302

    resp = post(client, f"/admin/users/{clerk.id}/enabled", {"enabled": "0"})
    assert resp.status_code == 302
    assert user_named(clerk.username).is_enabled is False
    assert "已停用" in text_of(client.get("/admin/users"))

    resp = counter.get("/")
    assert resp.status_code == 302 and location_path(resp) == "/login"
    resp = sign_in(counter, clerk.username, factories.PASSWORD)
    assert_chinese_error(resp, 401)

    post(client, f"/admin/users/{clerk.id}/enabled", {"enabled": "1"})
    assert sign_in(counter, clerk.username, factories.PASSWORD).status_code == 302
    actions = db.session.scalars(
        select(AuditLog.action).where(AuditLog.target == f"user:{clerk.id}").order_by(AuditLog.id)
    ).all()
    assert actions[-2:] == ["user.disable", "user.enable"]


def test_admin_cannot_deactivate_themself(client, admin):
    before = snapshot()
    resp = post(client, f"/admin/users/{admin.id}/enabled", {"enabled": "0"}, follow_redirects=True)
    assert resp.status_code == 200
    assert "不能停用自己的账号" in text_of(resp)
    assert snapshot() == before
    assert client.get("/admin/users").status_code == 200


def test_users_list_has_no_deactivate_button_for_oneself(client, admin, village):
    factories.user(village, "scorer")
    html = text_of(client.get("/admin/users"))
    assert f"/admin/users/{admin.id}/enabled" not in html
    assert "/enabled" in html


def test_user_forms_without_csrf_token_are_refused(client, admin, village):
    scorer = factories.user(village, "scorer")
    before = snapshot()
    for path, data in [
        ("/admin/users/new", GOOD_USER),
        (f"/admin/users/{scorer.id}/password", {"password": "brand-new-pass"}),
        (f"/admin/users/{scorer.id}/enabled", {"enabled": "0"}),
    ]:
        assert_chinese_error(post(client, path, data, token=False), 400)
    assert snapshot() == before
