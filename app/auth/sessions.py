"""Server-side sessions. The signed session cookie holds a random token; the `user_session` row
(its hash) says whether it is still valid. Villagers stay signed in on their own phone for
VILLAGER_DAYS (WeChat's browser drops session cookies when it closes, so theirs is a lasting
cookie); staff sessions end when the browser closes, and on the server after STAFF_HOURS.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import NamedTuple

from flask import g, session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, select

from ..database import Pipe, transaction, utcnow
from ..extensions import db
from .models import User, UserSession

VILLAGER_DAYS = 180
STAFF_HOURS = 24
KEY = "sid"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime(user: User) -> timedelta:
    return (
        timedelta(days=VILLAGER_DAYS) if user.role == "villager" else timedelta(hours=STAFF_HOURS)
    )


def start(user: User) -> None:
    """Sign `user` in on this browser: a new session row and a new cookie (never the token of
    the session before, so a planted cookie cannot be reused)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with transaction():
        db.session.add(
            UserSession(
                token_hash=_hash(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + lifetime(user),
            )
        )
    session.clear()
    session[KEY] = token
    session.permanent = user.role == "villager"
    login_user(user)


def current_hash() -> str | None:
    token = session.get(KEY)
    return _hash(token) if isinstance(token, str) else None


# What makes a browser's session valid (see `load`). Built once: every request runs it, and
# building a statement (with its cache key) cost more than running it.
_VALID = (
    UserSession.token_hash == bindparam("token_hash"),
    UserSession.expires_at > bindparam("now"),
    User.id == bindparam("user_id"),
    User.session_version == bindparam("version"),
    User.is_enabled.is_(True),
)
_LOAD = select(User).join(UserSession, UserSession.user_id == User.id).where(*_VALID)


def load(user_id: int, version: int) -> User | None:
    """The signed-in user of this browser, in one read: only if its session row exists, is the
    user's and has not expired, and the user is enabled (the cookie alone is not enough:
    signing out, a password reset or a disabled login deleted the row)."""
    token_hash = current_hash()
    if token_hash is None:
        return None
    return db.session.execute(
        _LOAD, {"token_hash": token_hash, "now": utcnow(), "user_id": user_id, "version": version}
    ).scalar_one_or_none()


class Who(NamedTuple):
    """Who is signed in, as the counter's API needs it: no ORM object."""

    id: int
    role: str
    village_id: int | None
    venue_id: int | None


_WHO = (
    select(User.id, User.role, User.village_id, User.venue_id)
    .join(UserSession, UserSession.user_id == User.id)
    .where(*_VALID)
)


def who() -> Who | None:
    """The signed-in user of this browser by the same rules as `load` (the session row exists,
    is the user's and has not expired, the user is enabled and the cookie's session version is
    the user's), read as four plain values instead of a loaded `User`: the counter's API runs
    it on every scan, and loading the ORM object cost more than the read. Flask-Login's
    `current_user` is not loaded (a view that touches it loads it as before)."""
    if "who" in g:
        return g.who
    found = None
    token_hash = current_hash()
    uid, _sep, version = str(session.get("_user_id") or "").partition(":")
    if token_hash is not None and (uid + version).isascii() and uid.isdigit() and version.isdigit():
        params = {
            "token_hash": token_hash,
            "now": utcnow(),
            "user_id": int(uid),
            "version": int(version),
        }
        row = Pipe().run(_WHO, params).first()
        found = Who(*row) if row is not None else None
    g.who = found
    return found


def end() -> None:
    """Sign this browser out: its row goes, so a copy of the cookie is worth nothing."""
    token_hash = current_hash()
    if token_hash is not None:
        with transaction():
            db.session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))
    logout_user()
    session.clear()
