"""Server-side sessions. The signed session cookie holds a random token; the `user_session` row
(its hash) says whether it is still valid. Villagers stay signed in on their own phone for
VILLAGER_DAYS (WeChat's browser drops session cookies when it closes, so theirs is a lasting
cookie); staff sessions end when the browser closes, and on the server after STAFF_HOURS.
"""

import hashlib
import secrets
from datetime import timedelta

from flask import session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, select

from ..database import transaction, utcnow
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


# Built once: every request runs it, and building it (with its cache key) cost more than running it.
_LOAD = (
    select(User)
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        UserSession.token_hash == bindparam("token_hash"),
        UserSession.expires_at > bindparam("now"),
        User.id == bindparam("user_id"),
        User.session_version == bindparam("version"),
        User.is_enabled.is_(True),
    )
)


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


def end() -> None:
    """Sign this browser out: its row goes, so a copy of the cookie is worth nothing."""
    token_hash = current_hash()
    if token_hash is not None:
        with transaction():
            db.session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))
    logout_user()
    session.clear()
