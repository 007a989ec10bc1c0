"""Sign-in with throttling, and user management."""

import re
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from ..audit import record
from ..database import transaction
from ..errors import DomainError, InvalidInput, NotFound
from ..extensions import db
from ..text import clean
from . import throttle
from .models import ROLES, User, UserSession, hash_secret


class BadCredentials(DomainError):
    status = 401
    code = "bad_credentials"
    message = _l("Wrong username or password.")


class LoginLocked(DomainError):
    status = 429
    code = "locked"
    message = _l("Too many wrong passwords. Try again in %(minutes)s minutes.")


@dataclass(frozen=True)
class SignInLimits:
    per_account: int  # wrong passwords per account from clients it does not know
    per_address: int  # wrong passwords per address from clients the account does not know
    per_device: int  # wrong passwords from a browser the account signed in on before
    minutes: int


def _dummy_hash() -> str:
    # Checked against when the username does not exist, so that a wrong name costs as long as a
    # wrong password: the time of an answer must not tell which phone numbers have accounts.
    method = current_app.config["PASSWORD_HASH_METHOD"]
    cached = _DUMMY.get(method)
    if cached is None:
        cached = _DUMMY[method] = hash_secret(secrets.token_hex(16))
    return cached


_DUMMY: dict[str, str] = {}


def authenticate(
    username: str,
    password: str,
    address: str,
    limits: SignInLimits,
    *,
    device: str | None = None,
) -> User:
    """The enabled user with these credentials.

    Every attempt is counted before the password is checked (see throttle.py), so the limits are
    exact under concurrency. A browser that signed in to this account before (`device`, the
    nonce of its device cookie) has a budget of its own: a stranger guessing from the same
    address, or guessing this account from anywhere, does not lock it out. Strangers share the
    account's budget and their address's. Raises LoginLocked while a budget is spent (even for
    the right password) and BadCredentials otherwise.
    """
    # A phone keyboard may type the number full-width (１３８...): the username is ASCII.
    username = unicodedata.normalize("NFKC", username or "").strip()
    name = username.lower()
    if device:
        budget = [throttle.Limit(f"dev:{device}", limits.per_device, limits.minutes)]
    else:
        budget = [
            throttle.Limit(f"user:{name}", limits.per_account, limits.minutes),
            throttle.Limit(f"addr:{address}", limits.per_address, limits.minutes),
        ]
    refused = throttle.reserve(budget)
    if refused is not None:
        raise LoginLocked(minutes=refused.minutes)
    user = db.session.scalar(select(User).where(User.username == username))
    ok = check_password_hash(user.password_hash if user else _dummy_hash(), password or "")
    if user is not None and ok and user.is_enabled:
        throttle.clear(budget[0].key)
        if len(budget) > 1:
            throttle.refund(budget[1:])
        return db.session.get(User, user.id)
    raise BadCredentials()


MIN_PASSWORD = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(_l("The password needs at least %(n)s characters."), n=MIN_PASSWORD)


def create_user(
    *,
    village_id: int | None,
    role: str,
    username: str,
    password: str,
    display_name: str = "",
    resident_id: int | None = None,
    actor_id: int | None = None,
) -> User:
    """A new login. Raises InvalidInput for an unknown role, a weak password or a taken name."""
    username = (username or "").strip()
    display_name = clean(display_name, _l("Name"), max_len=50)
    if role not in ROLES:
        raise InvalidInput(_l("Unknown role."))
    if not username or len(username) > 40:
        raise InvalidInput(_l("A username is required (at most 40 characters)."))
    if not USERNAME_RE.match(username):  # here, not only in a form: the county page, the CLI
        raise InvalidInput(_l("Use letters, digits and . _ @ - only."))
    _check_password(password)
    with transaction():
        if db.session.scalar(select(User.id).where(User.username == username)):
            raise InvalidInput(_l("The username %(name)s is already taken."), name=username)
        user = User(
            village_id=village_id,
            role=role,
            username=username,
            display_name=display_name,
            resident_id=resident_id,
        )
        user.set_password(password)
        db.session.add(user)
        try:
            db.session.flush()
        except IntegrityError:  # another request took the name after the check above
            raise InvalidInput(
                _l("The username %(name)s is already taken."), name=username
            ) from None
        record(village_id, actor_id, "user.create", f"user:{user.id}", f"{role} {username}")
        return user


def _user_in_village(village_id: int, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.village_id != village_id:
        raise NotFound()
    return user


def reset_password(village_id: int, user_id: int, password: str, actor_id: int) -> None:
    _check_password(password)
    with transaction():
        user = _user_in_village(village_id, user_id)
        user.set_password(password)
        end_sessions(user.id)
        record(village_id, actor_id, "user.reset_password", f"user:{user_id}")


def set_enabled(village_id: int, user_id: int, enabled: bool, actor_id: int) -> None:
    with transaction():
        user = _user_in_village(village_id, user_id)
        if user.id == actor_id and not enabled:
            raise InvalidInput(_l("You cannot deactivate yourself."))
        user.is_enabled = enabled
        user.session_version += 1
        end_sessions(user.id)
        record(
            village_id, actor_id, "user.enable" if enabled else "user.disable", f"user:{user_id}"
        )


def change_own_password(user_id: int, current: str, new: str, keep_session: str | None) -> None:
    """A user changes the own password: the current one is required, and every other session
    of the user ends (a phone left signed in somewhere is signed out); `keep_session` (the token
    hash of the session asking) stays."""
    _check_password(new)
    with transaction():
        user = db.session.get(User, user_id)
        if user is None or not check_password_hash(user.password_hash, current or ""):
            raise InvalidInput(_l("The current password is wrong."))
        user.password_hash = hash_secret(new)
        end_sessions(user.id, keep=keep_session)
        record(user.village_id, user.id, "user.change_password", f"user:{user.id}")


def end_sessions(user_id: int, keep: str | None = None) -> None:
    """End every server-side session of a user (a reset, a disabled login), but `keep`."""
    q = delete(UserSession).where(UserSession.user_id == user_id)
    if keep:
        q = q.where(UserSession.token_hash != keep)
    with transaction():
        db.session.execute(q)
