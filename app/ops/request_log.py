"""One log line per request, with a request id that the error page shows.

The id comes from the proxy's `X-Request-Id` when it is a sane one (nginx's `$request_id`: 32
hex; anything of 8 to 64 letters, digits, `-`, `_`, `.`), else it is made here (16 hex). It is
sent back as `X-Request-Id`, printed on every error page and in every API error, and starts the
request's log line, so a clerk's "it said error 7f3a…" is found with `grep 7f3a`.

The line (logger `village_points.request`, to stderr, which gunicorn and journald keep):

    rid=7f3a09c2d4e1b8a6 GET /counter 200 12.3ms user=5 addr=10.0.0.7

A pay code's `/q/<token>` is logged as `/q/…`: addresses carry codes, logs must not.
"""

import logging
import re
import secrets
import sys
import time

from flask import Flask, g, request
from sqlalchemy import inspect

logger = logging.getLogger("village_points.request")
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_TOKEN = re.compile(r"^/q/[^/]+")


def request_id() -> str:
    return getattr(g, "request_id", "") if g else ""


def _user_id() -> str:
    """The signed-in user's id as loaded for this request, without asking the database again:
    after the request's commit the user object is expired, and reading `current_user.id` (or
    `is_authenticated`, which reads `is_enabled`) would reload it - a query per request only
    for the log line."""
    user = g.get("_login_user")  # where Flask-Login keeps the user it loaded
    if user is None:
        who = g.get("who")  # the counter's API reads only who is asking (auth.sessions.who)
        return str(who.id) if who is not None else "-"
    state = inspect(user, raiseerr=False)
    if state is None or state.identity is None:  # the anonymous user, or not yet saved
        return "-"
    return str(state.identity[0])


def _log_path() -> str:
    return _TOKEN.sub("/q/…", request.path)


def init_app(app: Flask) -> None:
    if not app.testing and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False

    @app.before_request
    def start():  # registered before every other before_request: the id exists for any error
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _SANE.match(given) else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def finish(resp):
        rid = request_id()
        if rid:
            resp.headers["X-Request-Id"] = rid
        ms = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        try:
            user = _user_id()
        except Exception:  # noqa: BLE001 - the log line must never be what fails
            user = "?"
        logger.info(
            "rid=%s %s %s %s %.1fms user=%s addr=%s",
            rid or "-",
            request.method,
            _log_path(),
            resp.status_code,
            ms,
            user,
            request.remote_addr or "-",
        )
        return resp

    @app.context_processor
    def inject_request_id():
        return {"request_id": request_id()}
