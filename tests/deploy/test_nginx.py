"""deploy/nginx/village-points.conf, as shipped, in Debian's nginx on loopback ports with a
self-signed certificate, proxying to the real gunicorn fixture (TRUSTED_PROXIES=1): HTTP goes to
HTTPS, cookies are Secure, the app sees the client's address (not a forged X-Forwarded-For),
redirects and absolute URLs stay https on the right host, static files come from disk with a
year's immutable caching and gzip, and nginx's request id reaches the app's log."""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from app.auth.models import LoginThrottle
from app.extensions import db
from app.static_files import export

from .. import factories
from ..conftest import ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not Path(NGINX).exists() or not shutil.which("openssl"),
        reason="needs Debian's nginx-light and openssl (.ci/run installs them)",
    ),
]
SITE = ROOT / "deploy" / "nginx" / "village-points.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_for_test(upstream: str, https: int, http: int, tmp: Path) -> str:
    """The shipped site file with only its machine-specific values changed."""
    conf = SITE.read_text()
    swaps = {
        "server 127.0.0.1:8000;": f"server {upstream};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen [::]:80;": "",
        "/etc/letsencrypt/live/village.example.org/fullchain.pem": str(tmp / "cert.pem"),
        "/etc/letsencrypt/live/village.example.org/privkey.pem": str(tmp / "key.pem"),
        "/var/log/nginx/": f"{tmp}/",
        "/var/lib/village-points/public": str(tmp / "public"),
    }
    for old, new in swaps.items():
        assert old in conf, f"{old} is no longer in {SITE.name}: update this test"
        conf = conf.replace(old, new)
    return conf


@pytest.fixture
def proxied(app, monkeypatch, request, tmp_path):
    """gunicorn told to trust one proxy, and nginx in front of it. Yields (https base, http
    base, nginx folder)."""
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    upstream = request.getfixturevalue("live_server").removeprefix("http://")
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    export(app, tmp / "public")
    https, http = free_port(), free_port()
    (tmp / "site.conf").write_text(site_for_test(upstream, https, http, tmp))
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read the test's files
    (tmp / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    )
    conf = ["-p", str(tmp), "-c", str(tmp / "nginx.conf")]
    checked = subprocess.run([NGINX, "-t", *conf], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(
        [NGINX, *conf, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"https://127.0.0.1:{https}"
    deadline = time.time() + 20
    while True:
        try:
            requests.get(base + "/healthz", verify=str(tmp / "cert.pem"), timeout=5)
            break
        except requests.ConnectionError:
            assert time.time() < deadline, (tmp / "error.log").read_text()
            time.sleep(0.1)
    yield base, f"http://127.0.0.1:{http}", tmp
    proc.terminate()
    proc.wait(timeout=10)


def _logged(path, text, wait=10.0) -> bool:
    """Whether `text` appears in the log at `path` within `wait` seconds."""
    deadline = time.time() + wait
    while True:
        if path.exists() and text in path.read_text():
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.05)


def test_nginx_in_front_of_gunicorn(app, village, proxied, tmp_path):
    base, plain, tmp = proxied
    admin = factories.user(village, "village_admin")
    db.session.commit()
    s = requests.Session()
    s.verify = str(tmp / "cert.pem")
    s.trust_env = False  # else REQUESTS_CA_BUNDLE would win over verify

    # Plain HTTP is sent to HTTPS on the same host and path.
    r = requests.get(plain + "/login?next=/admin", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://127.0.0.1/login?next=/admin"

    # Over HTTPS: HSTS, a Secure session cookie, the request id of nginx.
    page = s.get(base + "/login", timeout=10)
    assert page.status_code == 200
    assert "max-age" in page.headers["Strict-Transport-Security"]
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    rid = page.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)  # nginx's $request_id, passed to the app
    # Both logs are written after the answer is sent: wait for the lines, not for luck.
    assert _logged(tmp / "village-points.access.log", f"rid={rid}")
    assert _logged(tmp_path / "gunicorn.log", f"rid={rid} GET /login 200")

    # A wrong password with a forged X-Forwarded-For: the app counts the address nginx saw.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    wrong = s.post(
        base + "/login",
        data={"username": admin.username, "password": "wrong", "csrf_token": token},
        # A browser sends the Referer; over HTTPS Flask-WTF checks it names this host.
        headers={"X-Forwarded-For": "6.6.6.6", "Referer": base + "/login"},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 401
    db.session.rollback()
    keys = set(db.session.scalars(select(LoginThrottle.key)))
    assert "addr:127.0.0.1" in keys and "addr:6.6.6.6" not in keys

    # Signing in: the redirect stays on this https host; the new session cookie is Secure.
    signed = s.post(
        base + "/login",
        data={"username": admin.username, "password": factories.PASSWORD, "csrf_token": token},
        headers={"Referer": base + "/login"},
        allow_redirects=False,
        timeout=10,
    )
    assert signed.status_code == 302, signed.text[:300]
    where = signed.headers["Location"]
    assert where.startswith("/") or where.startswith(base + "/"), where
    assert "Secure" in signed.headers["Set-Cookie"]
    home = s.get(base + where if where.startswith("/") else where, timeout=10)
    assert home.status_code == 200 and home.url.startswith(base)
    # Absolute URLs the app writes (the API description's server) name https and this host.
    api = s.get(base + "/api/v1/openapi.json", timeout=10).json()
    assert api["servers"][0]["url"] == base

    # Static files: from disk under their hashed name, kept a year, gzipped.
    css = re.search(r'href="(/static/app\.[0-9a-f]{10}\.css)"', home.text).group(1)
    r = s.get(base + css, headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200 and "X-Request-Id" not in r.headers  # nginx, not the app
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Encoding"] == "gzip" and "text/css" in r.headers["Content-Type"]
    assert r.content == (ROOT / "app" / "static" / "app.css").read_bytes()
    # An unhashed name falls through to the app, which asks browsers to revalidate.
    r = s.get(base + "/static/app.css", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    assert "X-Request-Id" in r.headers
