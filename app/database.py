"""Transactions and engine set-up that make SQLite and PostgreSQL behave alike.

One user action = one service call = one transaction. Services open it with `transaction()`;
nothing else commits.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

# On SQLite a writing transaction must take the write lock at BEGIN (BEGIN IMMEDIATE): a deferred
# transaction that read first and writes later fails with "database is locked" instead of waiting,
# and two of them could both read the same balance.
_immediate: ContextVar[bool] = ContextVar("immediate", default=False)
_depth: ContextVar[int] = ContextVar("depth", default=0)


def monotonic_ms() -> float:
    return time.perf_counter() * 1000


def report_lock_hold(village_id: int, locked_at_ms: float) -> None:
    """How long a transaction held a village's ledger lock, appended to LEDGER_LOCK_LOG when it
    is set (the counter benchmark reads it); nothing otherwise."""
    path = current_app.config.get("LEDGER_LOCK_LOG") if has_app_context() else None
    if path:
        with open(path, "a") as f:
            f.write(f"{village_id} {monotonic_ms() - locked_at_ms:.3f}\n")


class _WriterLock:
    """SQLite lets one writer in at a time; a writer that finds the database busy sleeps and
    retries (1, 2, 5, 10 ... 100 ms), so under load most of a redemption's time was spent
    asleep. Writers of one database file queue on an flock of a file beside it instead: the
    kernel wakes the next one the moment the lock is free. Shared by every gunicorn worker on
    the machine, which SQLite requires anyway."""

    def __init__(self, database_path: str):
        self.path = database_path + "-writer.lock"
        self.fd: int | None = None
        self.pid = 0

    def acquire(self) -> None:
        if self.fd is None or self.pid != os.getpid():  # a forked worker opens its own
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self.pid = os.getpid()
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def _writer_lock() -> "_WriterLock | None":
    return getattr(db.engine, "_village_writer_lock", None)


def utcnow() -> datetime:
    """Naive UTC, microsecond precision: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def transaction() -> Iterator:
    """The one transaction of a service call; commits on success, rolls back on any error.

    A nested call joins the outer transaction, so services compose (a redemption posts a ledger
    entry and lowers stock in one commit).
    """
    depth = _depth.get()
    if depth:
        token = _depth.set(depth + 1)
        try:
            yield db.session
        finally:
            _depth.reset(token)
        return
    # Drop any read snapshot the request already holds (e.g. loading current_user), so the
    # service starts a fresh transaction that takes its locks before it reads.
    db.session.rollback()
    t_imm, t_depth = _immediate.set(True), _depth.set(1)
    writer = _writer_lock()
    if writer is not None:
        writer.acquire()
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if writer is not None:
            writer.release()
        _immediate.reset(t_imm)
        _depth.reset(t_depth)


def sql():
    """The session's connection, for prebuilt Core statements on hot paths: the same
    transaction, without the ORM's per-statement work (flush check, events, result wrapping),
    which cost more than running the statement. Pending ORM changes are flushed first."""
    session = db.session
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


def in_transaction() -> bool:
    return _depth.get() > 0


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    if engine.url.database and engine.url.database != ":memory:":
        engine._village_writer_lock = _WriterLock(engine.url.database)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
        # Let SQLAlchemy emit BEGIN itself (see _on_begin); pysqlite's own handling is off.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed redemption survives a power cut (the shop's power does go off);
        # NORMAL in WAL mode may lose the last commits.
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")
