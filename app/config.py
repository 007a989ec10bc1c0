"""Configuration from the environment; nothing secret is hard-coded."""

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path


def normalize_database_url(url: str) -> str:
    """Accept URLs as users write them (postgres://, postgresql://) and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_or_create_secret(instance_path: str) -> str:
    """A secret generated once and kept in the instance folder.

    Several gunicorn workers may start at once, so the file is created with O_EXCL and whoever
    loses the race reads the winner's key.
    """
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)  # the winner is still writing it
        raise RuntimeError(f"{path} is empty") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _int_env(name: str) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise RuntimeError(f"{name} must be a whole number, not {value!r}")
    return int(value)


class MissingSecretKey(RuntimeError):
    pass


def secret_key(database_uri: str, instance_path: str) -> str:
    """The key when none was configured: on SQLite one generated once into the instance folder
    (one server owns the file anyway). On PostgreSQL several app servers may share the database,
    and each would make a key of its own, so that a session or QR code signed by one fails on
    the other: there it must be given."""
    if database_uri.startswith("postgresql"):
        raise MissingSecretKey(
            "SECRET_KEY is not set. With PostgreSQL every app server must be given the same "
            "SECRET_KEY in its environment (for example: SECRET_KEY=$(python3 -c 'import secrets; "
            "print(secrets.token_hex(32))'), written once into the environment file of every "
            "server). See deploy/README.md."
        )
    return load_or_create_secret(instance_path)


class Config:
    SQLALCHEMY_DATABASE_URI: str | None = None  # filled in create_app from DATABASE_URL
    # No pool ping (a round trip per request): a SQLite connection is a file, and PostgreSQL's
    # are checked at checkout by a look at their socket (database.py, _configure_postgresql).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SECRET_KEY: str | None = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Only villagers' sessions are permanent (see auth/sessions.py): their phones stay signed in.
    PERMANENT_SESSION_LIFETIME = timedelta(days=180)
    WTF_CSRF_TIME_LIMIT = None  # a form left open on a phone all morning must still submit
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = {"zh_CN": "中文", "en": "English"}
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    # Pages, scripts and JSON compressed for the village's slow mobile connection. gzip is what
    # every phone browser (and WeChat's) accepts over plain HTTP; brotli where it is offered.
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "image/svg+xml",
    ]
    PAGE_SIZE = 20
    PASSWORD_HASH_METHOD = "scrypt"
    # Login throttling: per account and per address, kept in the database (several workers).
    LOGIN_MAX_FAILURES = 5
    LOGIN_MAX_FAILURES_PER_ADDRESS = 30
    LOGIN_LOCK_MINUTES = 15
    # How many reverse proxies (nginx, a load balancer) stand in front of the app and may be
    # believed about the client's address and scheme (X-Forwarded-For/-Proto/-Host). 0: none.
    TRUSTED_PROXIES = 0
    # `flask housekeeping` (daily) deletes, after these many days: pay codes no longer accepted,
    # attempt counters whose window is over, sessions that expired. Shown on /admin/settings.
    PAY_CODE_RETENTION_DAYS = 7
    THROTTLE_RETENTION_DAYS = 1
    SESSION_RETENTION_DAYS = 7
    IMPORT_PREVIEW_RETENTION_DAYS = 7  # an import checked and never confirmed
    TESTING = False

    @classmethod
    def from_environ(cls, instance_path: str) -> dict:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'village.db'}"
        return {
            "SQLALCHEMY_DATABASE_URI": normalize_database_url(url),
            "SECRET_KEY": os.environ.get("SECRET_KEY", "").strip(),  # see secret_key() below
            "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "") == "1",
            "TRUSTED_PROXIES": _int_env("TRUSTED_PROXIES"),
            # What printed QR codes and certificates link to, e.g. https://jf.example.gov.cn
            "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "").strip(),
            # Benchmarks only: append how long each ledger lock was held (see database.py).
            "LEDGER_LOCK_LOG": os.environ.get("LEDGER_LOCK_LOG", ""),
        }


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-only-secret"
    # scrypt costs ~0.2 s a hash by design; hundreds of test users need a cheap method.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    WTF_CSRF_ENABLED = True
