"""Backups that restore: `flask backup DEST` and `flask restore SRC`.

A backup is a folder `DEST/village-points-<UTC time>/` holding the database and `manifest.json`:

- SQLite: `database.sqlite3`, made with SQLite's online backup API (one read transaction, so the
  counter keeps writing meanwhile and the copy is the database as of one instant), a plain SQLite
  file (journal mode DELETE) that `sqlite3` opens as it is.
- PostgreSQL: `database.pgdump`, made by `pg_dump --format=custom` (PostgreSQL's compressed
  archive format, read by `pg_restore`; `pg_restore --list database.pgdump` shows its contents).
  pg_dump reads a snapshot that this process exports and holds open while it reads the chain
  heads, so the heads in the manifest are exactly those in the dump.

Photos are rows of the database (table `photo`), so every backup holds them.

`manifest.json` says when and from what the backup was made, the Alembic revision, the file's
name, size and sha256, and every village's chain head (`seq` and `hash`): after a restore the
heads must be the same, and `flask ledger verify --head SEQ:HASH` checks a head later.

A backup is written under a name ending in `.partial` and renamed when complete, so a backup
folder without that suffix is whole. `--keep N` then deletes all but the newest N.

`flask restore SRC` restores into an empty database only (the one DATABASE_URL names), checks the
file's sha256 first and afterwards verifies every chain in full and compares the heads.
"""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

FORMAT_VERSION = 1
PREFIX = "village-points-"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
_NAME = re.compile(rf"^{PREFIX}\d{{8}}T\d{{6}}(\.\d+)?Z$")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, for the operator."""


@dataclass
class Result:
    folder: Path
    manifest: dict
    deleted: list[Path]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _heads(conn) -> dict:
    rows = conn.execute(
        text("SELECT code, ledger_seq, ledger_head FROM village ORDER BY code")
    ).all()
    return {code: {"seq": seq, "hash": head} for code, seq, head in rows}


def _revision(conn) -> str | None:
    if not inspect(conn).has_table("alembic_version"):  # a database made by create_all
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


# --- PostgreSQL: the client tools ----------------------------------------------------------------


def _pg_env(url: URL) -> dict:
    """libpq's environment for pg_dump/pg_restore: the password never appears in `ps`."""
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[var] = str(value)
    options = url.query.get("options")
    if options:
        env["PGOPTIONS"] = unquote(options if isinstance(options, str) else options[0])
    return env


def _schema(url: URL) -> str | None:
    """The schema a `options=-csearch_path=X` URL puts the app in (None: the default, public)."""
    options = url.query.get("options")
    if not options:
        return None
    m = re.search(r"search_path\s*=\s*([A-Za-z0-9_]+)", unquote(str(options)))
    return m.group(1) if m and m.group(1) != "public" else None


def _server_major(conn) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar()) // 10000


def _tool(name: str, major: int) -> str:
    """pg_dump/pg_restore of at least the server's major version (an older pg_dump refuses a
    newer server): Debian's versioned folder first, then PATH, or PG_BIN when set."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]) / name)
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin/{name}"))
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file():
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True)
            m = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
            if m and int(m.group(1)) >= major:
                return str(path)
    raise BackupError(
        f"{name} of PostgreSQL {major} or newer is needed (Debian: apt-get install "
        f"postgresql-client-{major}); set PG_BIN to its folder if it is elsewhere"
    )


# --- backup --------------------------------------------------------------------------------------


def backup(database_uri: str, dest: str | Path, keep: int | None = None) -> Result:
    url = make_url(database_uri)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = PREFIX + now.strftime("%Y%m%dT%H%M%S.%fZ")
    partial = dest / (name + ".partial")
    partial.mkdir()
    try:
        if url.get_backend_name() == "sqlite":
            manifest = _backup_sqlite(url, partial)
        elif url.get_backend_name() == "postgresql":
            manifest = _backup_pg(url, partial)
        else:
            raise BackupError(f"no backup for {url.get_backend_name()}")
        path = partial / manifest["file"]
        manifest.update(
            format_version=FORMAT_VERSION,
            created_at=now.isoformat(timespec="seconds"),
            size=path.stat().st_size,
            sha256=_sha256(path),
        )
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        folder = dest / name
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    deleted = prune(dest, keep) if keep else []
    return Result(folder, manifest, deleted)


def _backup_sqlite(url: URL, out: Path) -> dict:
    source = _sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    target = out / SQLITE_FILE
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # pages=-1: the whole database in one step, under one read transaction: a consistent
        # copy while writers go on (WAL lets them).
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        dst.commit()
    finally:
        src.close()
        dst.close()
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            heads, revision = _heads(conn), _revision(conn)
    finally:
        engine.dispose()
    return {
        "database": "sqlite",
        "file": SQLITE_FILE,
        "format": "SQLite 3 database file (online backup API)",
        "revision": revision,
        "heads": heads,
    }


def _backup_pg(url: URL, out: Path) -> dict:
    target = out / PG_FILE
    schema = _schema(url)
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            # One snapshot for the heads read here and for everything pg_dump reads.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
            heads, revision = _heads(conn), _revision(conn)
            major = _server_major(conn)
            args = [
                _tool("pg_dump", major),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={target}",
            ]
            if schema:
                args.append(f"--schema={schema}")
            done = subprocess.run(args, env=_pg_env(url), capture_output=True, text=True)
            conn.rollback()
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupError("pg_dump failed: " + done.stderr.strip())
    return {
        "database": "postgresql",
        "server_major": major,
        "schema": schema,
        "file": PG_FILE,
        "format": "pg_dump --format=custom (restore with pg_restore)",
        "revision": revision,
        "heads": heads,
    }


def prune(dest: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete backups in `dest` (and left-over partial ones
    older than the newest). Names sort by time."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    complete = sorted(p for p in dest.iterdir() if p.is_dir() and _NAME.match(p.name))
    doomed = complete[:-keep]
    newest = complete[-1].name if complete else ""
    doomed += [
        p
        for p in dest.iterdir()
        if p.is_dir() and p.name.endswith(".partial") and p.name[: -len(".partial")] < newest
    ]
    for p in doomed:
        shutil.rmtree(p)
    return doomed


# --- restore -------------------------------------------------------------------------------------


def read_manifest(src: str | Path) -> tuple[Path, dict]:
    """The backup folder (SRC may name the folder or its manifest) and its checked manifest."""
    src = Path(src)
    folder = src.parent if src.name == "manifest.json" else src
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{folder} is not a backup (no readable manifest.json): {e}") from None
    if manifest.get("format_version") != FORMAT_VERSION or "/" in manifest.get("file", "/"):
        raise BackupError(f"{folder}/manifest.json is not a manifest this version reads")
    path = folder / manifest["file"]
    if not path.is_file() or _sha256(path) != manifest.get("sha256"):
        raise BackupError(f"{path} is missing or damaged (its sha256 differs from the manifest)")
    return folder, manifest


def restore(database_uri: str, src: str | Path) -> dict:
    """Restore the backup into the (empty) database; returns the manifest. The caller verifies."""
    folder, manifest = read_manifest(src)
    url = make_url(database_uri)
    kind = url.get_backend_name()
    if kind != manifest["database"]:
        raise BackupError(f"the backup is of {manifest['database']}, DATABASE_URL is {kind}")
    if kind == "sqlite":
        _restore_sqlite(url, folder / manifest["file"])
    else:
        _restore_pg(url, folder / manifest["file"], manifest)
    return manifest


def _restore_sqlite(url: URL, backup_file: Path) -> None:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        tables = dst.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        if tables[0]:
            raise BackupError(f"{target} is not empty: restore only into an empty database")
        src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            src.backup(dst, pages=-1)
        finally:
            src.close()
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()


def _restore_pg(url: URL, backup_file: Path, manifest: dict) -> None:
    schema = manifest.get("schema") or "public"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            ).scalar()
            major = _server_major(conn)
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"schema {schema} of the database already has tables: restore only into an empty "
            "database (createdb a new one)"
        )
    done = subprocess.run(
        [
            _tool("pg_restore", major),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={url.database}",
            str(backup_file),
        ],
        env=_pg_env(url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError("pg_restore failed: " + done.stderr.strip())


def current_heads(database_uri: str) -> dict:
    engine = create_engine(make_url(database_uri))
    try:
        with engine.connect() as conn:
            return _heads(conn)
    finally:
        engine.dispose()
