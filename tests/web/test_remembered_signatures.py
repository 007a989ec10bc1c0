"""The session cookies and CSRF tokens whose signatures were checked once are remembered by
their exact text; the memory is bounded in size as well as in number.

itsdangerous decodes a signature leniently (characters outside base64, such as "!", are
dropped), so one signed value has endless spellings, each as long as the request allows. Each
still verifies (the answer is unchanged), but only the spelling itsdangerous writes is
remembered: otherwise anyone could fill a worker's memory with 4,096 entries of 500 KB."""

from app.extensions import csrf

from ..conftest import csrf_token


def test_a_csrf_token_is_remembered_only_as_it_was_written(app, client):
    token = csrf_token(client)  # anyone gets a session and its token from the sign-in page
    cookie = {"Cookie": "session=" + client.get_cookie("session").value}
    attacker = app.test_client(use_cookies=False)  # sends the same session every time
    csrf._checked.clear()
    for i in range(8):
        padded = token + "!!!!" * (100_000 + i)  # 400 KB: the form limit is 500 KB
        resp = attacker.post("/logout", data={"csrf_token": padded}, headers=cookie)
        assert resp.status_code == 302  # the CSRF check passed: the spelling is valid
    assert csrf._checked == {}
    resp = attacker.post("/logout", data={"csrf_token": token}, headers=cookie)
    assert resp.status_code == 302 and [key[1] for key in csrf._checked] == [token]


def test_a_session_cookie_is_remembered_only_as_it_was_written(app, client):
    client.get("/login")  # an anonymous session: a signed cookie anyone can get
    cookie = client.get_cookie("session").value
    attacker = app.test_client(use_cookies=False)
    memory = app.session_interface._verified
    memory.clear()
    for i in range(8):
        padded = cookie + "!!!!" * (2000 + i)  # 8 KB: one header line
        resp = attacker.get("/login", headers={"Cookie": "session=" + padded})
        # Accepted: the session (and its CSRF value) was read, so no new cookie is set.
        assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    assert memory == {}
    resp = attacker.get("/login", headers={"Cookie": "session=" + cookie})
    assert resp.status_code == 200 and [key[2] for key in memory] == [cookie]
