"""The Alembic migrations build the same schema as the models, on SQLite and PostgreSQL."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from app.config import normalize_database_url

from ..conftest import PG_URL, ROOT, with_schema


def _flask(args, url, tmp_path: Path):
    env = dict(
        os.environ,
        DATABASE_URL=url,
        FLASK_APP="wsgi.py",
        SECRET_KEY="migration-test",
        INSTANCE_PATH=str(tmp_path / "instance"),
    )
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upgrade_from_empty_then_check_finds_no_drift(tmp_path):
    schema = None
    if PG_URL:
        base = normalize_database_url(PG_URL)
        schema = f"m_{secrets.token_hex(4)}"
        engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = with_schema(base, schema)
    else:
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
    try:
        up = _flask(["db", "upgrade"], url, tmp_path)
        assert up.returncode == 0, up.stderr
        check = _flask(["db", "check"], url, tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        demo = _flask(["demo"], url, tmp_path)
        assert demo.returncode == 0, demo.stderr
        verify = _flask(["ledger", "verify"], url, tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        if schema:
            with engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
