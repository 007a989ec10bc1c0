"""The UI speaks Chinese unless the user picks English, and the choice is a cookie."""

from .helpers import post, text_of


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
