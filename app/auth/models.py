from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..database import utcnow
from ..extensions import db


def hash_secret(secret: str) -> str:
    """A password or PIN hash with the configured method (scrypt; a cheap one in tests)."""
    return generate_password_hash(secret, method=current_app.config["PASSWORD_HASH_METHOD"])


ROLES = ("county_admin", "village_admin", "scorer", "clerk", "villager")


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)  # a villager's is the phone
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(50), default="")
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"), unique=True)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venue.id"))  # a clerk's one venue
    is_enabled: Mapped[bool] = mapped_column(default=True)
    # Bumped on password reset or deactivation so that every open session ends.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # 长辈版 (larger text and targets), chosen by the villager; `elder_offered` once the choice
    # was put to them, so it is offered once and then only through the switch on every page.
    elder_mode: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    elder_offered: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # Messages (消息) newer than this are unread.
    messages_seen_at: Mapped[datetime | None]

    village = relationship("Village")
    resident = relationship("Resident")

    def set_password(self, password: str) -> None:
        self.password_hash = hash_secret(password)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        return self.is_enabled


class LoginThrottle(db.Model):
    """Failed-login counters per account and per address; in the database because several
    gunicorn workers must share them."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]


class UserSession(db.Model):
    """A signed-in browser, on the server: the session cookie carries a random token and only its
    hash is stored. Signing out deletes the row, so a copied cookie stops working at once; a
    password reset or a disabled login deletes every row of the user."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
