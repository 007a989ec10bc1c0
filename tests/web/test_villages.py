"""Village settings (each change recorded with who) and the county admin's villages."""

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.villages.models import AuditLog, Village

from .helpers import assert_chinese_error, fresh, location_path, post, snapshot, text_of

DEFAULTS = {
    "notice_days": "5",
    "star_thresholds": "50, 100, 200, 300, 500",
    "card_daily_cap": "500",
    "meal_age_tiers": "60:5, 70:3, 80:0",
    "notice_show_names": "y",
    "notice_public_days": "30",
}


@pytest.fixture
def admin(login_as):
    return login_as("village_admin")


def settings_changes() -> list[tuple]:
    fresh()
    return db.session.execute(
        select(AuditLog.user_id, AuditLog.target, AuditLog.detail)
        .where(AuditLog.action == "settings.change")
        .order_by(AuditLog.id)
    ).all()


def test_settings_page_shows_the_current_values(client, admin):
    html = text_of(client.get("/admin/settings"))
    assert 'value="50, 100, 200, 300, 500"' in html
    assert 'value="60:5, 70:3, 80:0"' in html
    assert 'name="notice_days" type="number" value="5"' in html or 'value="5"' in html


def test_settings_save_and_each_change_is_recorded_with_who(client, admin, village):
    data = dict(
        DEFAULTS,
        notice_days="7",
        star_thresholds="30，60，120",  # a Chinese comma, as typed on a phone
        card_pin_required="y",
        meal_age_tiers="65:4, 80:0",
    )
    resp = post(client, "/admin/settings", data)
    assert resp.status_code == 302 and location_path(resp) == "/admin/settings"
    v = db.session.get(Village, village.id)
    assert v.notice_days == 7
    assert v.star_thresholds == [30, 60, 120]
    assert v.card_pin_required is True
    assert v.meal_age_tiers == [[65, 4], [80, 0]]
    assert v.card_daily_cap == 500 and v.notice_show_names is True
    assert sorted(settings_changes()) == sorted(
        [
            (admin.id, "notice_days", "5 → 7"),
            (admin.id, "star_thresholds", "50, 100, 200, 300, 500 → 30, 60, 120"),
            (admin.id, "card_pin_required", "False → True"),
            (admin.id, "meal_age_tiers", "60:5, 70:3, 80:0 → 65:4, 80:0"),
        ]
    )
    assert "5 → 7" in text_of(client.get("/admin/settings"))


def test_saving_unchanged_settings_records_nothing(client, admin):
    resp = post(client, "/admin/settings", DEFAULTS)
    assert resp.status_code == 302
    assert settings_changes() == []


def test_unticked_box_turns_a_setting_off(client, admin, village):
    data = dict(DEFAULTS)
    del data["notice_show_names"]
    assert post(client, "/admin/settings", data).status_code == 302
    assert db.session.get(Village, village.id).notice_show_names is False
    assert settings_changes() == [(admin.id, "notice_show_names", "True → False")]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("notice_days", "0"),
        ("notice_days", "61"),
        ("notice_days", "五"),
        ("notice_days", ""),
        ("star_thresholds", ""),
        ("star_thresholds", "五十, 一百"),
        ("star_thresholds", "100, 50"),  # must rise
        ("star_thresholds", "0, 10"),  # must be positive
        ("star_thresholds", "50, 50"),
        ("star_thresholds", "1, 2, 3, 4, 5, 6"),  # at most five stars
        ("meal_age_tiers", "60-5"),
        ("meal_age_tiers", "60:5, 50:3"),  # must go up in age
        ("meal_age_tiers", "200:5"),
        ("meal_age_tiers", "60:免费"),
        ("card_daily_cap", "-1"),
        ("card_daily_cap", "很多"),
    ],
)
def test_bad_setting_is_refused_with_a_message_and_nothing_changes(
    client, admin, village, name, value
):
    before = snapshot()
    data = {**DEFAULTS, "notice_days": "9", name: value}  # a good change alongside the bad one
    assert_chinese_error(post(client, "/admin/settings", data), 422)
    assert snapshot() == before
    assert db.session.get(Village, village.id).notice_days == 5


def test_settings_form_without_csrf_token_is_refused(client, admin, village):
    before = snapshot()
    assert_chinese_error(post(client, "/admin/settings", DEFAULTS, token=False), 400)
    assert snapshot() == before


# --- county admin ------------------------------------------------------------------------

NEW_VILLAGE = {
    "name": "石桥村",
    "code": "shiqiao",
    "admin_username": "shiqiao-admin",
    "admin_password": "first-admin-pw",
}


def test_county_admin_creates_a_village_whose_first_admin_can_sign_in(
    app, client, login_as, village
):
    county = login_as("county_admin")
    resp = post(client, "/county/villages", NEW_VILLAGE)
    assert resp.status_code == 302 and location_path(resp) == "/county/villages"
    fresh()
    v = db.session.scalar(select(Village).where(Village.code == "shiqiao"))
    assert v.name == "石桥村"
    first = db.session.scalar(select(User).where(User.username == "shiqiao-admin"))
    assert (first.role, first.village_id) == ("village_admin", v.id)
    created = db.session.scalar(
        select(AuditLog).where(AuditLog.action == "village.create", AuditLog.village_id == v.id)
    )
    assert (created.user_id, created.village_id) == (county.id, v.id)
    html = text_of(client.get("/county/villages"))
    assert "石桥村" in html and "双塘村" in html

    desk = app.test_client()
    resp = post(desk, "/login", {"username": "shiqiao-admin", "password": "first-admin-pw"})
    assert resp.status_code == 302
    settings = text_of(desk.get("/admin/settings"))
    assert "石桥村" in settings
    assert desk.get("/admin/households/").status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        dict(NEW_VILLAGE, code=""),
        dict(NEW_VILLAGE, code="ShiQiao"),
        dict(NEW_VILLAGE, code="s"),
        dict(NEW_VILLAGE, code="shi qiao"),
        dict(NEW_VILLAGE, code="-shiqiao"),
        dict(NEW_VILLAGE, code="石桥"),
        dict(NEW_VILLAGE, code="x" * 41),
        dict(NEW_VILLAGE, code="shuangtang"),  # taken
        dict(NEW_VILLAGE, name=""),
        dict(NEW_VILLAGE, admin_username="shuangtang-first-admin"),  # taken
        dict(NEW_VILLAGE, admin_username="石桥 村长"),  # the same rule as on the users page
        dict(NEW_VILLAGE, admin_password="short"),
    ],
    ids=[
        "empty-code",
        "uppercase",
        "too-short",
        "space",
        "leading-dash",
        "chinese-code",
        "too-long",
        "code-taken",
        "no-name",
        "admin-taken",
        "admin-name-with-space",
        "short-password",
    ],
)
def test_bad_new_village_is_refused_and_nothing_is_created(client, login_as, village, data):
    login_as("county_admin")
    before = snapshot()
    assert_chinese_error(post(client, "/county/villages", data), 422)
    assert snapshot() == before
