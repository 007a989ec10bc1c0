"""Transactions and engine set-up that make SQLite and PostgreSQL behave alike.

One user action = one service call = one transaction. Services open it with `transaction()`;
nothing else commits.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

# On SQLite a writing transaction must take the write lock at BEGIN (BEGIN IMMEDIATE): a deferred
# transaction that read first and writes later fails with "database is locked" instead of waiting,
# and two of them could both read the same balance.
_immediate: ContextVar[bool] = ContextVar("immediate", default=False)
_depth: ContextVar[int] = ContextVar("depth", default=0)


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
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _immediate.reset(t_imm)
        _depth.reset(t_depth)


def in_transaction() -> bool:
    return _depth.get() > 0


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
        # Let SQLAlchemy emit BEGIN itself (see _on_begin); pysqlite's own handling is off.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")
