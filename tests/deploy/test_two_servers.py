"""Two app servers on one PostgreSQL, each with its own instance folder, and a client that goes
to one, then the other, at every step: sign in, pay code, counter lookup, redemption, photo
upload and view, sign out. Nothing any step needs lives on one server's disk or in its memory;
afterwards the ledger verifies."""

import io
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests
from PIL import Image

from app.auth.models import User
from app.extensions import db
from app.households.models import Household
from app.ledger.chain import verify
from app.scoring.photos import Photo
from app.store.models import Item, Redemption

from .. import factories
from ..conftest import PG_URL, ROOT, _free_port
from ..services.test_store import make_store
from ..web.test_store_pages import villager_of

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not PG_URL, reason="two app servers share PostgreSQL (TEST_DATABASE_URL)"),
]
SECRET = "shared-by-both-servers"


def start(database_url: str, instance, log_path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(
        os.environ, DATABASE_URL=database_url, SECRET_KEY=SECRET, INSTANCE_PATH=str(instance)
    )
    log = open(log_path, "w")  # noqa: SIM115 - the server keeps it until it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_up(base: str, log_path) -> None:
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(base + "/login", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.time() < deadline, log_path.read_text()
        time.sleep(0.2)


@pytest.fixture
def two_servers(app, database_url, tmp_path):
    db.session.commit()
    servers = [
        start(database_url, tmp_path / f"instance-{name}", tmp_path / f"{name}.log")
        for name in ("a", "b")
    ]
    for (_proc, base), name in zip(servers, ("a", "b"), strict=True):
        wait_up(base, tmp_path / f"{name}.log")
    yield [base for _proc, base in servers]
    for proc, _base in servers:
        proc.terminate()
        proc.wait(timeout=20)
    # Each server had an instance folder of its own and wrote nothing into it.
    for name in ("a", "b"):
        folder = tmp_path / f"instance-{name}"
        assert not folder.exists() or not any(folder.rglob("*")), list(folder.rglob("*"))


class Alternating:
    """A browser whose every request goes to the other server than the one before."""

    def __init__(self, bases: list[str]):
        self.bases, self.turn = bases, 0
        self.s = requests.Session()  # cookies of 127.0.0.1 go to both ports, as behind nginx

    def url(self, path: str) -> str:
        self.turn += 1
        return self.bases[self.turn % 2] + path

    def get(self, path: str, **kw):
        return self.s.get(self.url(path), timeout=30, allow_redirects=False, **kw)

    def post(self, path: str, **kw):
        return self.s.post(self.url(path), timeout=30, allow_redirects=False, **kw)

    def form_token(self, path: str) -> str:
        html = self.get(path).text
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    def sign_in(self, username: str) -> None:
        token = self.form_token("/login")  # from one server
        done = self.post(  # to the other
            "/login",
            data={"username": username, "password": factories.PASSWORD, "csrf_token": token},
        )
        assert done.status_code == 302, done.text[:300]

    def sign_out(self, page: str) -> None:
        token = self.form_token(page)  # the header's sign-out form
        assert self.post("/logout", data={"csrf_token": token}).status_code == 302


def picture() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_client_alternating_between_two_servers(app, village, two_servers):
    store = make_store(village, rice_stock=20)
    household = factories.household(village, opening=100).id
    villager = villager_of(village, household)
    clerk = db.session.get(User, store.clerk)
    admin = factories.user(village, "village_admin")
    db.session.commit()

    # The villager signs in on one server and shows a pay code served by the other.
    phone = Alternating(two_servers)
    phone.sign_in(villager.username)
    code = phone.get("/me/code.json")
    assert code.status_code == 200, code.text[:200]
    number = code.json()["number"].replace(" ", "")

    # The clerk looks the code up on one server and redeems it on the other.
    counter = Alternating(two_servers)
    counter.sign_in(clerk.username)
    page = counter.get("/counter").text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    headers = {"X-CSRFToken": csrf}
    found = counter.post("/api/v1/counter/lookup", json={"code": number}, headers=headers)
    assert found.status_code == 200, found.text[:300]
    assert found.json()["household"]["balance"] == 100
    body = {
        "code": found.json()["code"],
        "lines": [{"item_id": store.rice, "qty": 2}],
        "request_id": uuid.uuid4().hex,
        "resident_id": found.json()["resident"]["id"],
    }
    paid = counter.post("/api/v1/counter/redemptions", json=body, headers=headers)
    assert paid.status_code == 201, paid.text[:300]
    assert paid.json()["balance_after"] == 80
    again = counter.post("/api/v1/counter/redemptions", json=body, headers=headers)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    reused = counter.post(
        "/api/v1/counter/redemptions",
        json={**body, "request_id": uuid.uuid4().hex},
        headers=headers,
    )
    assert reused.status_code in (404, 409, 410, 422), reused.text[:200]  # the code is used up

    # The admin uploads an item photo through one server; both serve it.
    office = Alternating(two_servers)
    office.sign_in(admin.username)
    token = office.form_token(f"/admin/store/items/{store.oil}/edit")
    saved = office.post(
        f"/admin/store/items/{store.oil}/edit",
        data={
            "name": "油",
            "points": "5",
            "unit": "",
            "slot": "",
            "low_stock": "5",
            "active": "y",
            "csrf_token": token,
        },
        files={"photo": ("oil.png", picture(), "image/png")},
    )
    assert saved.status_code == 302, saved.text[:300]
    shown = [office.get(f"/store/items/{store.oil}/photo") for _ in range(2)]
    assert [r.status_code for r in shown] == [200, 200]
    assert shown[0].content == shown[1].content and shown[0].content[:2] == b"\xff\xd8"
    assert shown[0].headers["ETag"] == shown[1].headers["ETag"]

    # Signing out on one server ends the session on both.
    for who, home in ((phone, "/me"), (counter, "/counter"), (office, "/admin/settings")):
        assert who.get(home).status_code == 200
        who.sign_out(home)
        for _ in range(2):
            assert who.get(home).status_code == 302

    db.session.rollback()
    assert db.session.get(Household, household).balance == 80
    assert db.session.query(Redemption).count() == 1
    assert db.session.get(Item, store.oil).photo_id == db.session.query(Photo.id).scalar()
    assert verify(full=True) == []
