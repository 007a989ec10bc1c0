"""Sign-in with throttling, and user management."""

import re
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..database import transaction, utcnow
from ..errors import DomainError, InvalidInput, NotFound
from ..extensions import db
from .models import ROLES, LoginThrottle, User


class BadCredentials(DomainError):
    status = 401
    code = "bad_credentials"
    message = _l("Wrong username or password.")


class LoginLocked(DomainError):
    status = 429
    code = "locked"
    message = _l("Too many wrong passwords. Try again in %(minutes)s minutes.")


def _locked_minutes(keys: list[str]) -> int:
    now = utcnow()
    until = db.session.scalar(
        select(LoginThrottle.locked_until)
        .where(LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now)
        .order_by(LoginThrottle.locked_until.desc())
    )
    return 0 if until is None else max(1, int((until - now).total_seconds() // 60) + 1)


def _count_failure(key: str, limit: int, lock_minutes: int) -> None:
    now = utcnow()
    window = now - timedelta(minutes=lock_minutes)
    for _attempt in range(3):
        try:
            with transaction():
                row = db.session.execute(
                    select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                ).scalar_one_or_none()
                if row is None:
                    db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
                    return
                if row.window_start < window:
                    row.failures, row.window_start = 0, now
                # Atomic increment: two workers failing at once both count.
                db.session.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.key == key)
                    .values(failures=LoginThrottle.failures + 1)
                )
                db.session.refresh(row)
                if row.failures >= limit:
                    row.locked_until = now + timedelta(minutes=lock_minutes)
                return
        except IntegrityError:
            continue  # another worker inserted the row first; count again on it


def authenticate(
    username: str, password: str, address: str, *, limit: int, address_limit: int, lock_minutes: int
) -> User:
    """The enabled user with these credentials. Raises LoginLocked while the account or the
    address is locked (even for the right password) and BadCredentials otherwise."""
    username = (username or "").strip()
    keys = [f"user:{username.lower()}", f"addr:{address}"]
    minutes = _locked_minutes(keys)
    if minutes:
        raise LoginLocked(minutes=minutes)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is not None and user.is_enabled and user.check_password(password):
        with transaction():
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == keys[0])
                .values(failures=0, locked_until=None)
            )
        return db.session.get(User, user.id)
    _count_failure(keys[0], limit, lock_minutes)
    _count_failure(keys[1], address_limit, lock_minutes)
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
            display_name=display_name.strip(),
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
        record(village_id, actor_id, "user.reset_password", f"user:{user_id}")


def set_enabled(village_id: int, user_id: int, enabled: bool, actor_id: int) -> None:
    with transaction():
        user = _user_in_village(village_id, user_id)
        if user.id == actor_id and not enabled:
            raise InvalidInput(_l("You cannot deactivate yourself."))
        user.is_enabled = enabled
        user.session_version += 1
        record(
            village_id, actor_id, "user.enable" if enabled else "user.disable", f"user:{user_id}"
        )
