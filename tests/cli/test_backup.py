"""`flask backup` while the counter is busy, then `flask restore` into an empty database: the
restore verifies, its chain heads are the backup's, and every redemption answered before the
backup began is in it (on SQLite and on PostgreSQL, against the real gunicorn server)."""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app.auth.models import User
from app.config import normalize_database_url
from app.extensions import db
from app.store import services
from app.store.services import ItemData
from app.villages.models import Village

from .. import factories
from ..conftest import PG_URL, ROOT
from ..services.test_store import card_code, make_store
from ..web.test_counter_concurrency import clerk_session, live_secret

pytestmark = pytest.mark.server
WORKERS = 6


def flask(args: list[str], url: str, tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        FLASK_APP="wsgi.py",
        SECRET_KEY="live-test-secret",
        INSTANCE_PATH=str(tmp_path / "cli-instance"),
    )
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def wait_for(condition, failures: list, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert not failures and time.monotonic() < deadline, failures[:3] or "too slow"
        time.sleep(0.05)


def empty_database(tmp_path: Path, source_url: str):
    """An empty database to restore into, and a function that drops it."""
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'restored.db'}", lambda: None
    base = normalize_database_url(PG_URL)
    name = f"restore_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    # The same search_path option as the source: the restore recreates the test's schema.
    db_part, _, query = source_url.partition("?")
    url = db_part.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def test_backup_during_a_burst_of_redemptions_restores_everything_answered_before_it(
    app, village, live_server, database_url, tmp_path
):
    store = make_store(village, rice_stock=100_000)
    photo = services.save_item(
        village.id,
        store.shop,
        None,
        ItemData(name="鸡蛋", points=1, stock=10, photo=factories_jpeg()),
        None,
    )
    households = [factories.household(village, opening=100_000).id for _ in range(WORKERS)]
    db.session.get(Village, village.id).card_daily_cap = 1_000_000  # after: services roll back
    db.session.commit()
    with live_secret(app):
        cards = [card_code(h) for h in households]
    auth = clerk_session(live_server, db.session.get(User, store.clerk).username)

    answered: list[tuple[str, float]] = []  # (request id, when its 201 came back)
    failures: list = []
    stop = threading.Event()

    def clerk(i: int) -> None:
        with requests.Session() as s:
            s.cookies.update(auth[0])
            while not stop.is_set():
                rid = secrets.token_hex(16)
                r = s.post(
                    live_server + "/api/v1/counter/redemptions",
                    json={
                        "code": cards[i],
                        "lines": [{"item_id": store.rice, "qty": 1}],
                        "request_id": rid,
                    },
                    headers={"X-CSRFToken": auth[1]},
                    timeout=60,
                )
                if r.status_code == 201:
                    answered.append((rid, time.monotonic()))
                else:
                    failures.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=clerk, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(answered) >= 30, failures)
        began = time.monotonic()
        done = flask(["backup", str(tmp_path / "backups"), "--keep", "3"], database_url, tmp_path)
        ended = time.monotonic()
        count_at_end = len(answered)
        wait_for(lambda: len(answered) >= count_at_end + 10, failures)  # the burst goes on
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert done.returncode == 0, done.stderr
    assert not failures, failures[:3]
    before = {rid for rid, t in answered if t < began}
    during = [rid for rid, t in answered if began <= t <= ended]
    assert len(before) >= 30 and during, "the backup ran while the counter was busy"

    (folder,) = [p for p in (tmp_path / "backups").iterdir()]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"] == ("postgresql" if PG_URL else "sqlite")
    assert manifest["file"] == ("database.pgdump" if PG_URL else "database.sqlite3")

    target, drop = empty_database(tmp_path, database_url)
    try:
        restored = flask(["restore", str(folder)], target, tmp_path)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "ledger OK" in restored.stdout
        verify = flask(["ledger", "verify", "--full"], target, tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        head = manifest["heads"][village.code]
        pinned = flask(
            [
                "ledger",
                "verify",
                "--village",
                village.code,
                "--head",
                f"{head['seq']}:{head['hash']}",
            ],
            target,
            tmp_path,
        )
        assert pinned.returncode == 0, pinned.stderr
        engine = create_engine(normalize_database_url(target))
        with engine.connect() as conn:
            ids = set(conn.execute(text("SELECT request_id FROM redemption")).scalars())
            seq, chain_head = conn.execute(
                text("SELECT ledger_seq, ledger_head FROM village WHERE code = :c"),
                {"c": village.code},
            ).one()
            egg = conn.execute(
                text(
                    "SELECT p.data FROM store_item i JOIN photo p ON p.id = i.photo_id "
                    "WHERE i.id = :i"
                ),
                {"i": photo.id},
            ).scalar()
        engine.dispose()
        assert before <= ids, f"{len(before - ids)} answered redemptions are missing"
        assert (seq, chain_head) == (head["seq"], head["hash"])
        assert egg and bytes(egg)[:2] == b"\xff\xd8"  # the photo came along
        # A second restore into the same (no longer empty) database is refused.
        again = flask(["restore", str(folder)], target, tmp_path)
        assert again.returncode == 1 and "empty" in again.stderr
    finally:
        drop()
    print(
        f"\nbackup took {ended - began:.2f}s during the burst; {len(before)} redemptions before, "
        f"{len(during)} while it ran, {len(ids)} in the restore"
    )


def factories_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 40)).save(buf, format="JPEG")
    return buf.getvalue()


def test_restore_refuses_a_damaged_backup_and_keep_prunes_old_ones(
    app, village, database_url, tmp_path
):
    db.session.commit()
    dest = tmp_path / "b"
    for _ in range(3):
        assert flask(["backup", str(dest), "--keep", "2"], database_url, tmp_path).returncode == 0
    folders = sorted(dest.iterdir())
    assert len(folders) == 2 and all((f / "manifest.json").is_file() for f in folders)
    manifest = json.loads((folders[-1] / "manifest.json").read_text())
    with open(folders[-1] / manifest["file"], "r+b") as f:
        f.seek(100)
        f.write(b"tampered")
    target, drop = empty_database(tmp_path, database_url)
    try:
        bad = flask(["restore", str(folders[-1])], target, tmp_path)
        assert bad.returncode == 1 and "damaged" in bad.stderr
        nothing = flask(["restore", str(tmp_path)], target, tmp_path)
        assert nothing.returncode == 1 and "not a backup" in nothing.stderr
    finally:
        drop()
