"""What travels to a villager's phone: compressed pages, static files under content-hashed names
cached for a year, and a villager's page within 30 KB in at most 5 requests."""

import gzip
import re

from .. import factories
from .test_store_api import sign_in

GZIP = {"Accept-Encoding": "gzip"}


def static_links(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_static_files_have_hashed_names_and_are_cached_for_a_year(client):
    html = client.get("/login").get_data(as_text=True)
    [css] = [link for link in static_links(html) if link.endswith(".css")]
    assert re.fullmatch(r"/static/app\.[0-9a-f]{10}\.css", css)
    resp = client.get(css, headers=GZIP)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Cookie" not in resp.headers.get("Vary", "")
    assert b"Village Points" in gzip.decompress(resp.data)


def test_an_old_or_unhashed_name_still_works_and_is_revalidated(client):
    resp = client.get("/static/app.css")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-cache"
    again = client.get("/static/app.css", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304
    stale = client.get("/static/app.0000000000.css")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"
    assert client.get("/static/nothing.css").status_code == 404


def without_csrf_token(html: bytes) -> bytes:
    """A form's CSRF token carries the second it was signed, so two requests either side of a
    second's turn differ there and nowhere else."""
    token = re.compile(rb'(name="csrf_token" type="hidden" value=")[^"]+"')
    assert len(token.findall(html)) == 1
    return token.sub(rb'\1TOKEN"', html)


def test_pages_are_compressed_when_the_browser_accepts_it(client):
    plain = client.get("/login")
    assert "Content-Encoding" not in plain.headers
    packed = client.get("/login", headers=GZIP)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert without_csrf_token(gzip.decompress(packed.data)) == without_csrf_token(plain.data)


def test_a_villagers_pages_stay_within_30_kb_in_5_requests(client, village):
    user = factories.user(village, "villager")
    sign_in(client, user.id)
    for path in ("/me", "/me/code", f"/v/{village.code}/notices"):
        page = client.get(path, headers=GZIP)
        assert page.status_code == 200, path
        html = gzip.decompress(page.data).decode()
        links = static_links(html)
        assert 1 + len(links) <= 5, (path, links)
        total = len(page.data) + sum(len(client.get(link, headers=GZIP).data) for link in links)
        assert total <= 30 * 1024, (path, total)
        assert not re.search(r'(?:href|src)="(?:https?:)?//', html), path  # nothing from elsewhere
