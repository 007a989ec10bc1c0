"""The UI speaks Chinese unless the user picks English, and the choice is a cookie."""

import re
from html import unescape

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db

from .. import factories
from .helpers import post, text_of


def changes(client) -> str:
    """The settings page's list of changes."""
    return text_of(client.get("/admin/settings")).split('<ul class="plain">')[1].split("</ul>")[0]


def lang_cookie(client):
    return client.get_cookie("lang")


def test_login_page_is_chinese_by_default(client):
    html = text_of(client.get("/login"))
    assert "登录" in html
    assert 'lang="zh-CN"' in html
    assert "Sign in" not in html


def test_lang_en_switches_to_english_and_sets_a_lasting_cookie(client):
    resp = client.get("/lang/en?next=/login")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/login")
    cookie = lang_cookie(client)
    assert cookie is not None and cookie.value == "en"
    assert cookie.http_only and cookie.same_site == "Lax"
    assert cookie.expires is not None  # survives closing the browser
    html = text_of(client.get("/login"))
    assert "Sign in" in html
    assert 'lang="en"' in html
    assert "登录" not in html


def test_lang_switch_goes_back_to_chinese(client):
    client.get("/lang/en")
    client.get("/lang/zh_CN")
    assert lang_cookie(client).value == "zh_CN"
    assert "登录" in text_of(client.get("/login"))


def test_lang_switch_ignores_unknown_languages(client):
    resp = client.get("/lang/fr?next=/login")
    assert resp.status_code == 302
    assert lang_cookie(client) is None
    client.get("/lang/en")
    client.get("/lang/de")
    assert lang_cookie(client).value == "en"  # the earlier choice stays


def test_a_forged_lang_cookie_falls_back_to_chinese(client):
    client.set_cookie("lang", "xx")
    assert "登录" in text_of(client.get("/login"))


def test_lang_switch_never_redirects_to_another_site(client):
    for target in ("https://evil.example/", "//evil.example/"):
        resp = client.get("/lang/en", query_string={"next": target})
        assert "evil.example" not in resp.headers["Location"]


def test_messages_from_the_code_follow_the_language(client, village):
    bad = {"username": "nobody", "password": "wrong-password"}
    assert "用户名或密码不对" in text_of(post(client, "/login", bad))
    client.get("/lang/en")
    assert "Wrong username or password." in text_of(post(client, "/login", bad))


def test_signed_in_pages_follow_the_language(client, login_as):
    login_as("village_admin")
    html = text_of(client.get("/admin/households/"))
    assert "户主" in html and "退出" in html
    client.get("/lang/en")
    html = text_of(client.get("/admin/households/"))
    assert "Head" in html and "Sign out" in html
    assert "户主" not in html


def test_settings_history_names_the_setting_in_the_readers_language(client, login_as):
    admin = login_as("village_admin", username="wangshuji")
    form = {
        "notice_days": "7",
        "star_thresholds": "50, 100, 200, 300, 500",
        "card_pin_required": "y",
        "card_daily_cap": "500",
        "notice_public_days": "30",
        "meal_age_tiers": "60:5, 70:3, 80:0",
    }
    assert post(client, "/admin/settings", form).status_code == 302
    html = changes(client)
    assert "公示期（天）: 5 → 7 · wangshuji" in html
    assert "刷积分卡兑换时要输入积分卡密码: 否 → 是" in html
    assert "notice_days" not in html and "True" not in html and f"#{admin.id}" not in html
    client.get("/lang/en")
    html = changes(client)
    assert "Notice period (days): 5 → 7" in html
    assert "Require the household PIN for a card at the counter: no → yes" in html


# --- every core page, as each role, shows no English in Chinese --------------------------------

ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")
SHOWN_ATTRS = re.compile(r'(?:placeholder|aria-label|title|alt)="([^"]*)"')
# Words that are no UI text: the link to the other language, file types inside Chinese sentences.
NOT_UI = {"English", "csv", "xlsx"}


def english_words(resp, data_words: set[str]) -> set[str]:
    """English words a user sees: text and labelled attributes, without scripts and <code>
    (the import page lists the column names a file may use, English ones among them)."""
    html = re.sub(r"(?s)<(script|style|code)\b.*?</\1>", " ", text_of(resp))
    shown = re.sub(r"(?s)<[^>]+>", " ", html) + " ".join(SHOWN_ATTRS.findall(html))
    return set(ENGLISH_WORD.findall(unescape(shown))) - NOT_UI - data_words


def core_pages(h: int, r: int, u: int) -> list[tuple[str, str, dict | None]]:
    get = [
        "/",
        "/admin/households/",
        "/admin/households/?status=archived&q=nobody",
        f"/admin/households/{h}",
        f"/admin/households/{h}/edit",
        "/admin/households/new",
        f"/admin/households/{h}/residents/new",
        f"/admin/households/{h}/residents/{r}",
        f"/admin/households/residents/{r}/login",
        "/admin/households/import",
        "/admin/users",
        "/admin/users/new",
        f"/admin/users/{u}/password",
        "/admin/settings",
        "/county/villages",
        "/me",
        "/no-such-page",
    ]
    bad_posts = {
        "/admin/households/new": {"number": "a b", "head_phone": "12", "head_birth_year": "x"},
        f"/admin/households/{h}/edit": {"number": ""},
        f"/admin/households/{h}/residents/new": {"phone": "12"},
        f"/admin/households/residents/{r}/login": {"password": "1"},
        "/admin/households/import": {},
        "/admin/users/new": {"username": "a b", "role": "nobody", "password": "1"},
        f"/admin/users/{u}/password": {"password": "1"},
        "/admin/settings": {"notice_days": "99", "star_thresholds": "a", "meal_age_tiers": "x"},
        "/county/villages": {"code": "A!"},
    }
    pages = [("GET", path, None) for path in get]
    pages += [("POST", path, data) for path, data in bad_posts.items()]
    return pages


@pytest.mark.parametrize(
    "role", ["signed_out", "village_admin", "scorer", "county_admin", "villager"]
)
def test_core_pages_show_no_untranslated_text_in_chinese(client, village, login_as, role):
    h = factories.household(village, head="王建国")
    r = h.residents[0].id
    u = factories.user(village, "scorer").id
    if role != "signed_out":
        login_as(role)
    # Usernames and the village code are data, shown as they were typed.
    names = [user.username for user in db.session.scalars(select(User))] + [village.code]
    data_words = {w for name in names for w in ENGLISH_WORD.findall(name)}
    untranslated = {}
    for method, path, data in core_pages(h.id, r, u):
        resp = client.get(path) if method == "GET" else post(client, path, data)
        if resp.status_code == 302:
            resp = client.get(resp.headers["Location"])
        words = english_words(resp, data_words)
        if words:
            untranslated[f"{method} {path} [{resp.status_code}]"] = sorted(words)
    assert not untranslated, (
        f"English on Chinese pages (wrap it in _() and translate): {untranslated}"
    )
