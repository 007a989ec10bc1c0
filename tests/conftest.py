"""Fixtures: a fresh database per test on SQLite (a new file) or PostgreSQL (TEST_DATABASE_URL:
a schema of this test run's own, emptied after each test), the app, a client, a CLI runner,
`login_as`, and a real gunicorn server for concurrency and browser tests."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask import g, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app import create_app
from app.config import TestConfig, normalize_database_url
from app.extensions import db

from . import factories

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL")


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema():
    """A schema of this test process's own on the PostgreSQL server, dropped at the end."""
    if not PG_URL:
        yield None
        return
    base = normalize_database_url(PG_URL)
    schema = f"t_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_schema(base, schema)
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield url
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def database_url(pg_schema, tmp_path):
    if pg_schema:
        yield pg_schema
        engine = create_engine(pg_schema)
        with engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        yield f"sqlite:///{tmp_path / 'test.db'}"


class IsolatedClient(FlaskClient):
    """Requests made inside the test's app context reuse that context, and with it `g`, where
    Flask-Login and Flask-Babel cache the signed-in user and the locale. Each request starts with
    an empty `g`, as it does in production, so sign-out, password resets and the language switch
    are tested for real."""

    def open(self, *args, **kwargs):
        if has_app_context():
            g.__dict__.clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    config = type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url})
    os.environ["INSTANCE_PATH"] = str(tmp_path / "instance")
    app = create_app(config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def village(app):
    return factories.village("shuangtang", "双塘村")


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert m, f"no CSRF token on {path}"
    return m.group(1)


@pytest.fixture
def login_as(client, village):
    """login_as(role) signs in a new user of that role in `village` (or the given one) and
    returns the user."""

    def _login(role: str, of_village=None, **kw):
        v = of_village or village
        user = factories.user(v, role, **kw)
        client.post("/logout", data={"csrf_token": csrf_token(client)})
        resp = client.post(
            "/login",
            data={
                "username": user.username,
                "password": factories.PASSWORD,
                "csrf_token": csrf_token(client),
            },
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return user

    return _login


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app, database_url, tmp_path):
    """A real gunicorn with several workers on this test's database. Yields its base URL."""
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY="live-test-secret",
        INSTANCE_PATH=str(tmp_path / "live-instance"),
    )
    db.session.commit()
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(base + "/login", timeout=5).status_code == 200:
                break
        except requests.RequestException:  # not listening yet, or busy starting its workers
            time.sleep(0.2)
    else:
        proc.terminate()
        raise RuntimeError((tmp_path / "gunicorn.log").read_text())
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    log.close()
