"""Migration ec87a8a33493 moves photos from the instance folder into the database, and a server
on PostgreSQL refuses to start without a shared SECRET_KEY."""

import hashlib
import os
import secrets
import subprocess
import sys

from sqlalchemy import create_engine, text

from app.config import normalize_database_url

from ..conftest import PG_URL, ROOT, with_schema
from .test_migrations import _flask


def test_upgrade_moves_photo_files_into_the_database(tmp_path):
    schema = None
    if PG_URL:
        base = normalize_database_url(PG_URL)
        schema = f"m_{secrets.token_hex(4)}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = with_schema(base, schema)
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    try:
        up = _flask(["db", "upgrade", "12eec70dbe51"], url, tmp_path)
        assert up.returncode == 0, up.stderr
        picture = b"\xff\xd8\xff\xe0 a stored jpeg" + secrets.token_bytes(64)
        folder = tmp_path / "instance" / "photos" / "1"
        folder.mkdir(parents=True)
        (folder / "abc.jpg").write_bytes(picture)
        engine = create_engine(normalize_database_url(url))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO village (id, code, name, created_at, notice_days, "
                    "star_thresholds, card_pin_required, card_daily_cap, meal_age_tiers, "
                    "gifts_earn_points, notice_show_names, ledger_seq, ledger_head) VALUES "
                    "(1, 'v', 'V', '2026-01-01', 5, '[]', false, 500, '[]', false, true, 0, :g)"
                ),
                {"g": "0" * 64},
            )
            conn.execute(
                text(
                    "INSERT INTO venue (id, village_id, kind, name, hours, created_at) "
                    "VALUES (1, 1, 'supermarket', 'shop', '', '2026-01-01')"
                )
            )
            for item_id, photo in ((1, "abc.jpg"), (2, "gone.jpg"), (3, None)):
                conn.execute(
                    text(
                        "INSERT INTO store_item (id, village_id, venue_id, name, points, unit, "
                        "active, stock, low_stock, photo, created_at) VALUES "
                        "(:id, 1, 1, 'x', 1, '', true, 0, 5, :photo, '2026-01-01')"
                    ),
                    {"id": item_id, "photo": photo},
                )
        engine.dispose()
        up = _flask(["db", "upgrade"], url, tmp_path)
        assert up.returncode == 0, up.stderr
        assert "gone.jpg" in up.stderr  # the missing file is reported
        engine = create_engine(normalize_database_url(url))
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT i.id, p.data, p.sha256, p.content_type, p.village_id FROM store_item i"
                    " LEFT JOIN photo p ON p.id = i.photo_id ORDER BY i.id"
                )
            ).all()
        engine.dispose()
        assert [r[0] for r in rows] == [1, 2, 3]
        assert bytes(rows[0][1]) == picture
        assert rows[0][2] == hashlib.sha256(picture).hexdigest()
        assert rows[0][3:] == ("image/jpeg", 1)
        assert rows[1][1] is None and rows[2][1] is None
        check = _flask(["db", "check"], url, tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        down = _flask(["db", "downgrade", "12eec70dbe51"], url, tmp_path)
        assert down.returncode == 0, down.stderr
    finally:
        if schema:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _start(database_url: str, tmp_path, secret: str | None):
    env = dict(os.environ, DATABASE_URL=database_url, INSTANCE_PATH=str(tmp_path / "inst"))
    env.pop("SECRET_KEY", None)
    if secret is not None:
        env["SECRET_KEY"] = secret
    code = "from wsgi import app; print(app.config['SECRET_KEY'])"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_postgresql_needs_an_explicit_secret_key_sqlite_makes_one(tmp_path):
    pg = "postgresql://nobody@127.0.0.1:1/none"  # never connected to: the check comes first
    refused = _start(pg, tmp_path, None)
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr and "same" in refused.stderr
    assert (tmp_path / "inst" / "secret_key").exists() is False
    assert _start(pg, tmp_path, "shared-key").stdout.strip() == "shared-key"
    sqlite = f"sqlite:///{tmp_path / 'x.db'}"
    first = _start(sqlite, tmp_path, None)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (tmp_path / "inst" / "secret_key").read_text().strip()
    assert _start(sqlite, tmp_path, None).stdout.strip() == first.stdout.strip()
