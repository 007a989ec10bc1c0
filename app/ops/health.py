"""`GET /healthz` for a load balancer: 200 and a small JSON body when the database answers and
its schema is at the migrations' head, 503 otherwise (a server that cannot serve, or one that
runs newer code than the database, is taken out of rotation). No login, no session, no cache."""

from functools import cache

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import inspect, text

from ..extensions import db

bp = Blueprint("ops", __name__)


@cache
def head_revisions(directory: str) -> frozenset[str]:
    config = AlembicConfig()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@bp.route("/healthz")
def healthz():
    heads = head_revisions(current_app.extensions["migrate"].directory)
    body = {"status": "ok", "database": "ok", "migrations": "ok"}
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set()
            if inspect(conn).has_table("alembic_version"):
                current = set(
                    conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                )
    except Exception:  # noqa: BLE001 - any failure to reach the database is "unavailable"
        body.update(status="unavailable", database="unreachable", migrations="unknown")
    else:
        if current != heads:
            body.update(status="unavailable", migrations="not at head")
        body["revision"] = ",".join(sorted(current)) or None
    resp = jsonify(body)
    resp.status_code = 200 if body["status"] == "ok" else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp
