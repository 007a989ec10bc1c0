"""Bare extension objects; create_app binds them to the app."""

import hmac
import re

from flask import current_app, g, request, session
from flask_babel import Babel
from flask_compress import Compress
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from flask_wtf.csrf import same_origin
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# What itsdangerous writes: URL-safe base64 parts joined by dots.
_SIGNED_TEXT = re.compile(r"[A-Za-z0-9_.-]{1,1024}")


def rememberable(text: str) -> bool:
    """Whether a signed text that verified may be remembered by its exact text: only as
    itsdangerous writes it, at most 1 KB. Its decoder drops other characters, so one valid
    token has endless longer spellings; remembering each would let anyone fill a worker's
    memory (4,096 entries of 500 KB). A spelling like this differs from the real one at
    most in the unused bits of its last character: a handful per token."""
    return _SIGNED_TEXT.fullmatch(text) is not None


class CSRF(CSRFProtect):
    """Flask-WTF's CSRF check, with two savings for the counter's JSON calls (a clerk scans
    all day): a request that is no form takes its token from the header without parsing a
    form, and a token whose signature was checked once is remembered (its exact text, under
    the key that checked it) with the value it carries - still compared with this session's
    on every request, so another session's token is refused as before. At most MEMORY
    tokens per process, each as itsdangerous writes it (`rememberable`); only while tokens do
    not expire (WTF_CSRF_TIME_LIMIT = None)."""

    MEMORY = 4096

    def __init__(self, app=None):
        self._checked: dict[tuple, str] = {}
        super().__init__(app)

    def _get_csrf_token(self):
        if request.mimetype in _FORMS:
            return super()._get_csrf_token()
        for header in current_app.config["WTF_CSRF_HEADERS"]:
            token = request.headers.get(header)
            if token:
                return token
        return None

    def protect(self, apply_exemptions=False):
        config = current_app.config
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        token, field = self._get_csrf_token(), config["WTF_CSRF_FIELD_NAME"]
        key = None
        if token and config["WTF_CSRF_TIME_LIMIT"] is None:
            key = (config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key, token)
        known, own = self._checked.get(key), session.get(field)
        if known is None or not isinstance(own, str) or not hmac.compare_digest(own, known):
            super().protect()  # the full check; refuses a bad token
            if key is not None and isinstance(session.get(field), str) and rememberable(token):
                if len(self._checked) >= self.MEMORY:
                    self._checked.clear()
                self._checked[key] = session[field]
            return
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:  # as CSRFProtect.protect
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRF()
babel = Babel()
compress = Compress()
