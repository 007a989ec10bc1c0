"""/healthz for a load balancer, and the request id: one log line per request, shown on error
pages and in API errors so a clerk can quote it."""

import logging
import re

from sqlalchemy import event, text

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.ops.health import head_revisions

from .. import factories
from ..services.test_store import card_code, make_store
from .helpers import text_of
from .test_store_api import sign_in


def stamp_head(app) -> str:
    (head,) = head_revisions(app.extensions["migrate"].directory)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:h)"), {"h": head})
    return head


def test_healthz_is_200_at_head_and_503_behind(client, app):
    behind = client.get("/healthz")  # create_all made the tables: no migration recorded
    assert behind.status_code == 503
    assert behind.json["migrations"] == "not at head" and behind.json["database"] == "ok"
    head = stamp_head(app)
    ok = client.get("/healthz")
    assert ok.status_code == 200, ok.json
    assert ok.json == {"status": "ok", "database": "ok", "migrations": "ok", "revision": head}
    assert ok.headers["Cache-Control"] == "no-store" and len(ok.data) < 200
    assert "Set-Cookie" not in ok.headers
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '12eec70dbe51'"))
    assert client.get("/healthz").status_code == 503


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    app = create_app(type("C", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503 and resp.json["database"] == "unreachable"


def test_every_request_logs_one_line_with_its_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="village_points.request"):
        resp = client.get("/login", headers={"X-Request-Id": "nginx-abcdef0123456789"})
        other = client.get("/login", headers={"X-Request-Id": "bad id; forged=log line"})
        client.get("/q/secret-token-value")
    assert resp.headers["X-Request-Id"] == "nginx-abcdef0123456789"
    assert re.fullmatch(r"[0-9a-f]{16}", other.headers["X-Request-Id"])
    lines = [r.getMessage() for r in caplog.records if r.name == "village_points.request"]
    assert len(lines) == 3
    assert lines[0].startswith("rid=nginx-abcdef0123456789 GET /login 200 ")
    assert "forged" not in lines[1]
    assert "/q/…" in lines[2] and "secret-token-value" not in lines[2]


def test_error_pages_show_the_request_id(client, app, login_as):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom-for-test", "boom", boom)
    missing = client.get("/no-such-page", headers={"X-Request-Id": "7f3a09c2d4e1b8a6"})
    assert missing.status_code == 404
    assert "<code>7f3a09c2d4e1b8a6</code>" in text_of(missing)
    broken = client.get("/boom-for-test")
    assert broken.status_code == 500
    rid = broken.headers["X-Request-Id"]
    assert rid in text_of(broken) and "错误编号" in text_of(broken)
    login_as("clerk")
    api = client.get("/api/v1/counter/no-such-thing")
    assert api.json["request_id"] == api.headers["X-Request-Id"]


def test_the_log_line_names_the_user_without_loading_it_again(app, client, village, caplog):
    """The id comes from who was found signed in for the request (the counter's API reads only
    that, `sessions.who`, four plain values): no `User` is loaded through the ORM, neither for
    the sign-in check nor for the log line after the commit (which expires what was loaded)."""
    store = make_store(village)
    household = factories.household(village, opening=50)
    token = sign_in(client, store.clerk)
    statements = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with caplog.at_level(logging.INFO, logger="village_points.request"):
            resp = client.post(
                "/api/v1/counter/redemptions",
                json={
                    "code": card_code(household.id),
                    "request_id": "log-line-0001",
                    "lines": [{"item_id": store.oil, "qty": 1}],
                },
                headers={"X-CSRFToken": token},
            )
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert resp.status_code == 201, resp.json
    (line,) = [r.getMessage() for r in caplog.records if r.name == "village_points.request"]
    assert " POST /api/v1/counter/redemptions 201 " in line
    assert f" user={store.clerk} " in line
    loads = [s for s in statements if "user.password_hash" in s.replace('"', "")]
    assert not loads, loads
