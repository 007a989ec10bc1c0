"""Transactions and engine set-up that make SQLite and PostgreSQL behave alike.

One user action = one service call = one transaction. Services open it with `transaction()`;
nothing else commits.
"""

import fcntl
import os
import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError

from .extensions import db

# On SQLite a writing transaction must take the write lock at BEGIN (BEGIN IMMEDIATE): a deferred
# transaction that read first and writes later fails with "database is locked" instead of waiting,
# and two of them could both read the same balance.
_immediate: ContextVar[bool] = ContextVar("immediate", default=False)
_depth: ContextVar[int] = ContextVar("depth", default=0)
_pipeline: ContextVar[object | None] = ContextVar("pipeline", default=None)
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open


def monotonic_ms() -> float:
    return time.perf_counter() * 1000


def lock_log_on() -> bool:
    return bool(has_app_context() and current_app.config.get("LEDGER_LOCK_LOG"))


# session.info: when the database let the transaction's locks go (SQLite: its COMMIT
# returned), if before the session's transaction ended.
RELEASED = "locks_released_ms"
# session.info, PostgreSQL while the hold is logged: the server's clock read by the statement
# sent after the COMMIT, which runs once the COMMIT (and its WAL flush) let the locks go.
RELEASED_SERVER = "locks_released_server_clock"


def report_lock_hold(
    village_id: int,
    sent_ms: float,
    granted_ms: float | None,
    until_ms: float | None = None,
    server_hold_ms: float | None = None,
) -> None:
    """How long a transaction held a village's ledger lock, appended to LEDGER_LOCK_LOG when it
    is set (the counter benchmark reads it); nothing otherwise. Two figures, in ms until now
    (or `until_ms`, when the lock went with the COMMIT before the session's end):
    from the moment the lock was sent, and from the moment it was granted. On SQLite the
    statement runs when sent, so both are the hold. On PostgreSQL the lock statement is
    pipelined: the first counts the wait for the lock and the answers' way back to the app;
    the second is `server_hold_ms`, the hold on the server's own clock (read by a statement
    just after the lock and one just after the COMMIT, while logged)."""
    path = current_app.config.get("LEDGER_LOCK_LOG") if has_app_context() else None
    if path:
        now = monotonic_ms() if until_ms is None else until_ms
        if server_hold_ms is not None:
            granted = server_hold_ms
        else:
            granted = now - granted_ms if granted_ms is not None else now - sent_ms
        with open(path, "a") as f:
            f.write(f"{village_id} {now - sent_ms:.3f} {granted:.3f}\n")


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
def transaction(*, pipelined: bool = False) -> Iterator:
    """The one transaction of a service call; commits on success, rolls back on any error.

    A nested call joins the outer transaction, so services compose (a redemption posts a ledger
    entry and lowers stock in one commit).

    `pipelined`: on PostgreSQL the statements the service sends through a `Pipe` go out without
    waiting for each answer (psycopg's pipeline mode), and the commit goes with the last of them:
    a service that reads its answers only when it needs them waits for the server a few times
    instead of once per statement - which is what a lock held across the statements costs.
    Nothing changes on SQLite (no network to save). Inside it, send everything through a
    `Pipe`: SQLAlchemy reads a statement's answer at once, which pipeline mode does not give.
    """
    depth = _depth.get()
    if depth:
        token = _depth.set(depth + 1)
        try:
            yield db.session
        finally:
            _depth.reset(token)
        return
    raw = _start_writing(pipelined)
    t_imm, t_depth = _immediate.set(True), _depth.set(1)
    writer = _writer_lock()
    if writer is not None:
        writer.acquire()
    try:
        if raw is None:
            yield db.session
            db.session.commit()
        elif isinstance(raw, sqlite3.Connection):
            # SQLite, pipelined: BEGIN IMMEDIATE and COMMIT straight to the driver, inside
            # the session's own transaction (begun by the request's reads), which then ends
            # as any other (the ledger forgets its heads): SQLAlchemy's rollback and new begin
            # of the session cost more than the redemption's SQL.
            with _sqlite_errors("BEGIN IMMEDIATE"):
                raw.execute("BEGIN IMMEDIATE")
            yield db.session
            session = db.session
            if session.new or session.dirty or session.deleted:
                session.flush()
            with _sqlite_errors("COMMIT"):
                raw.commit()
            # The database's lock is gone with the COMMIT: the next writer may go on while
            # SQLAlchemy ends the session's transaction (and the hold is reported).
            session.info[RELEASED] = monotonic_ms()
            if writer is not None:
                writer.release()
                writer = None
            session.commit()  # the database has committed: this only ends the session's
        else:
            # BEGIN and COMMIT are sent as statements of the pipeline (psycopg's own would
            # each wait for the server), and the pipeline's end reads every answer still due.
            with _translated(), raw.pipeline() as pipeline:
                t_pipe = _pipeline.set(pipeline)
                try:
                    raw.execute("BEGIN", prepare=False)
                    yield db.session
                    session = db.session
                    if session.new or session.dirty or session.deleted:
                        session.flush()  # inside the transaction, not after it
                    raw.execute("COMMIT", prepare=False)
                    if lock_log_on():  # measuring: when the COMMIT let the locks go
                        session.info[RELEASED_SERVER] = Sent(
                            cursor=raw.execute("SELECT clock_timestamp()", prepare=False)
                        )
                finally:
                    _pipeline.reset(t_pipe)
            db.session.commit()  # the server has committed: this only ends the session's
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if writer is not None:
            writer.release()
        _immediate.reset(t_imm)
        _depth.reset(t_depth)


def _start_writing(pipelined: bool):
    """Make the session ready for a service's transaction, every ORM value it loaded before
    to be read again inside it (taken before the locks, it may be stale). Returns psycopg's
    connection for a pipelined transaction on PostgreSQL, else None.

    SQLite: drop the read snapshot the request holds (e.g. from loading current_user), so the
    transaction starts with BEGIN IMMEDIATE. A pipelined one (nothing pending in the session)
    ends it on the driver and gets the driver's connection back, to send its own BEGIN
    IMMEDIATE and COMMIT inside the session's transaction. PostgreSQL: reads ran in autocommit (see
    `configure_engine`), so there is no snapshot to drop: the same connection leaves autocommit
    and its next statement begins the transaction (a pipelined one sends its own BEGIN and
    stays in autocommit); no connection goes back to the pool and comes out again (a ping), no
    ROLLBACK wipes the prepared statements.
    """
    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        if pipelined and not (session.new or session.dirty or session.deleted):
            raw = session.connection().connection.driver_connection
            raw.rollback()  # the request's read snapshot ends; the writing one starts anew
            return raw
        session.rollback()
        return None
    if session.new or session.dirty or session.deleted:
        session.rollback()  # changes no service made are not written
    raw = session.connection().connection.driver_connection
    if raw.info.transaction_status != _IDLE or not raw.autocommit:  # not expected
        session.rollback()
        raw = session.connection().connection.driver_connection
        raw.autocommit = True
    session.expire_all()
    if pipelined:
        return raw
    raw.autocommit = False
    return None


@contextmanager
def _translated(statement: str = "", params=None):
    """psycopg's errors as SQLAlchemy's (IntegrityError, ...), as every other statement's."""
    import psycopg

    try:
        yield
    except psycopg.Error as e:
        raise DBAPIError.instance(statement, params, e, psycopg.Error) from e


@contextmanager
def _sqlite_errors(statement: str):
    """sqlite3's errors as SQLAlchemy's, as every other statement's."""
    try:
        yield
    except sqlite3.Error as e:
        raise DBAPIError.instance(statement, None, e, sqlite3.Error) from e


def streaming_reads() -> None:
    """Before a server-side cursor (PostgreSQL), which lives only in a transaction: reads
    outside `transaction()` autocommit, so the session's connection opens one for the rest of
    its use (it ends when the session lets the connection go). Nothing to do on SQLite."""
    conn = sql()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        if raw.autocommit and raw.info.transaction_status == _IDLE:
            raw.autocommit = False


def sql():
    """The session's connection, for prebuilt Core statements on hot paths: the same
    transaction, without the ORM's per-statement work (flush check, events, result wrapping),
    which cost more than running the statement. Pending ORM changes are flushed first."""
    session = db.session
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


class Sent:
    """A statement sent through a `Pipe`: its answer is read when asked for."""

    def __init__(self, rows=None, rowcount=-1, cursor=None, statement: str = "", params=None):
        # Run at once (SQLite): its rows are read already, so no cursor stays open past an
        # error (an unread SQLite statement would keep its read lock after the rollback).
        self._rows, self._rowcount = rows, rowcount
        self._cursor, self._statement, self._params = cursor, statement, params

    def _answered(self):
        if self._cursor.pgresult is None:
            pipeline = _pipeline.get()
            if pipeline is not None:
                with self._translated():
                    pipeline.sync()
        return self._cursor

    def _translated(self):
        return _translated(self._statement, self._params)

    @property
    def rowcount(self) -> int:
        if self._cursor is None:
            return self._rowcount
        return self._answered().rowcount

    def all(self) -> list:
        if self._cursor is None:
            return list(self._rows or ())
        cursor = self._answered()
        with self._translated():
            return cursor.fetchall()

    def first(self):
        if self._cursor is None:
            return self._rows[0] if self._rows else None
        cursor = self._answered()
        with self._translated():
            return cursor.fetchone()

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]


class _Prepared:
    """A statement compiled once for one dialect and one set of parameters."""

    def __init__(self, statement, dialect, keys: list[str]):
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.statement = statement  # kept, so the id it is cached under is never reused
        self.compiled, self.text = compiled, compiled.string
        self.processors = compiled._bind_processors
        self.positions = compiled.positiontup  # qmark (SQLite): the parameters' order
        # Python-side defaults (insert) and onupdate values (update), which SQLAlchemy's
        # execution would fill in: the statement's columns not given in the parameters.
        self.defaults = [(c.key, c.default) for c in compiled.insert_prefetch]
        self.defaults += [(c.key, c.onupdate) for c in compiled.update_prefetch]
        # A row the driver hands back as SQLAlchemy would (no type turns a stored value into
        # another Python value: SQLite's booleans, dates and JSON do): sent straight to SQLite.
        self.plain_rows = all(
            entry[3]._cached_result_processor(dialect, None) is None
            for entry in compiled._result_columns
        )
        # What SQLAlchemy's construct_params does on each call, worked out once: which bound
        # names take the caller's parameters, which keep the statement's own values (a literal
        # in a condition), and which of them the dialect turns into what the driver takes.
        # Only for plain parameters; anything else (expanding IN lists, values computed at
        # execution) goes through construct_params.
        self.given: list[tuple[str, str]] | None = []
        self.fixed: dict = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding or bind.literal_execute or bind.callable is not None:
                self.given = None
                break
            if bind.key in keys:
                self.given.append((name, bind.key))
            elif name in keys:
                self.given.append((name, name))
            else:
                self.fixed[name] = bind.value
        if self.given is not None:
            for name, process in self.processors.items():
                if self.fixed.get(name) is not None:
                    self.fixed[name] = process(self.fixed[name])
            filled = {name for name, _key in self.given} | {name for name, _d in self.defaults}
            self.to_process = [(n, p) for n, p in self.processors.items() if n in filled]

    def values(self, params: dict) -> dict:
        if self.given is not None:
            values = dict(self.fixed)
            for name, key in self.given:
                values[name] = params[key]
            for name, default in self.defaults:
                if name not in params:
                    values[name] = default.arg if default.is_scalar else default.arg(None)
            for name, process in self.to_process:
                if values.get(name) is not None:
                    values[name] = process(values[name])
            return values
        values = self.compiled.construct_params(params, _check=False)
        for name, default in self.defaults:
            if name not in params:
                values[name] = default.arg if default.is_scalar else default.arg(None)
        for name, process in self.processors.items():
            if name in values and values[name] is not None:
                values[name] = process(values[name])
        return values


class Pipe:
    """Prebuilt Core statements sent on the session's connection, in its transaction, straight
    to the database's driver (compiled once per statement and set of parameters, without
    SQLAlchemy's per-statement work), their answers read only when asked for (`Sent`).

    On PostgreSQL, inside `transaction(pipelined=True)` a statement is sent without waiting, and
    reading an answer waits once for everything sent before it. On SQLite each runs at once,
    its rows read; a statement whose rows SQLAlchemy would convert goes through SQLAlchemy.

    Only for statements built once at import: each one's compiled form is kept for good.
    """

    _prepared: dict = {}

    def __init__(self):
        self._conn = sql()
        self._driver = self._conn.connection.driver_connection
        self.postgresql = self._conn.dialect.name == "postgresql"

    def _prepare(self, statement, params: dict) -> _Prepared:
        key = (id(statement), tuple(sorted(params)), self.postgresql)
        found = self._prepared.get(key)
        if found is None:
            found = self._prepared[key] = _Prepared(statement, self._conn.dialect, sorted(params))
        return found

    def run(self, statement, params: dict | None = None) -> Sent:
        params = params or {}
        prepared = self._prepare(statement, params)
        if not prepared.plain_rows:  # rows SQLAlchemy converts: let it run the statement
            if self.postgresql and _pipeline.get() is not None:
                raise TypeError("Pipe: rows SQLAlchemy converts cannot be read in a pipeline")
            return self._through_sqlalchemy(statement, params)
        values = prepared.values(params)
        if self.postgresql:
            cursor = self._driver.cursor()
            sent = Sent(cursor=cursor, statement=prepared.text, params=values)
            with sent._translated():
                cursor.execute(prepared.text, values)
            return sent
        cursor = self._driver.cursor()
        try:
            cursor.execute(prepared.text, [values[name] for name in prepared.positions])
            rows = cursor.fetchall() if cursor.description else None
            return Sent(rows=rows, rowcount=cursor.rowcount)
        except sqlite3.Error as e:
            raise DBAPIError.instance(prepared.text, values, e, sqlite3.Error) from e
        finally:
            cursor.close()

    def _through_sqlalchemy(self, statement, params: dict) -> Sent:
        result = self._conn.execute(statement, params)
        rows = result.all() if result.returns_rows else None
        return Sent(rows=rows, rowcount=result.rowcount)

    def many(self, statement, rows: list[dict]) -> None:
        """The same statement for each of `rows` (no answer to read)."""
        prepared = self._prepare(statement, rows[0])
        batch = [prepared.values(row) for row in rows]
        if self.postgresql:
            cursor = self._driver.cursor()
            sent = Sent(cursor=cursor, statement=prepared.text, params=None)
            with sent._translated():
                cursor.executemany(prepared.text, batch)
            return
        cursor = self._driver.cursor()
        try:
            cursor.executemany(
                prepared.text, [[v[name] for name in prepared.positions] for v in batch]
            )
        except sqlite3.Error as e:
            raise DBAPIError.instance(prepared.text, None, e, sqlite3.Error) from e
        finally:
            cursor.close()


@contextmanager
def batched_reads() -> Iterator[Pipe]:
    """A `Pipe` whose statements are sent together: on PostgreSQL (in psycopg's pipeline mode)
    the end of the block waits once for all their answers. Read the answers after the block,
    and run nothing else on the session inside it. On SQLite each runs at once."""
    pipe = Pipe()
    if not pipe.postgresql or _pipeline.get() is not None:
        yield pipe
        return
    # Not marked as the pipeline of `Sent`: none syncs on its own; the block's end does, once.
    with _translated(), pipe._driver.pipeline():
        yield pipe


def in_transaction() -> bool:
    return _depth.get() > 0


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
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
        # Straight to the driver: a statement through SQLAlchemy costs more than SQLite's BEGIN.
        conn.connection.driver_connection.execute(
            "BEGIN IMMEDIATE" if _immediate.get() else "BEGIN"
        )


def _closed_by_server(dbapi_conn) -> bool:
    import psycopg

    try:
        if dbapi_conn.closed:
            return True
        readable, _, _ = select.select([dbapi_conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _configure_postgresql(engine: Engine) -> None:
    """Reads outside a service's `transaction()` run in autocommit.

    Under READ COMMITTED every statement reads its own snapshot anyway, so a read-only request
    in a transaction only paid for it: a BEGIN and a ROLLBACK, each a round trip, and psycopg
    answers every ROLLBACK by forgetting its prepared statements (DEALLOCATE ALL, one more), so
    PostgreSQL parsed and planned each request's statements again. `transaction()` turns
    autocommit off on its connection; it is turned back on when the connection goes back to
    the pool, after the pool's ROLLBACK of anything left open.
    """

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_conn, _record):
        dbapi_conn.autocommit = True

    @event.listens_for(engine, "checkout")
    def _still_open(dbapi_conn, _record, _proxy):
        # Instead of the pool's ping (a round trip to the server on every request): a server
        # that closed the connection (restarted, killed the backend) has left its goodbye or
        # the end of the stream on the socket; an idle, healthy connection has nothing to read.
        # The pool then throws it away and checks out another one.
        if _closed_by_server(dbapi_conn):
            raise DisconnectionError("the server closed this connection")

    @event.listens_for(engine, "checkin")
    def _back_to_autocommit(dbapi_conn, _record):
        if dbapi_conn is None or dbapi_conn.closed or dbapi_conn.autocommit:
            return
        if dbapi_conn.info.transaction_status == _IDLE:  # the pool's ROLLBACK ran
            dbapi_conn.autocommit = True
