"""`flask backup DEST`, `flask restore SRC`, `flask housekeeping`: thin commands."""

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from . import backup as backups


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--keep", type=click.IntRange(min=1), default=None, help="Keep the newest N.")
@with_appcontext
def backup_command(dest: str, keep: int | None):
    """Back the database (photos included) up into a new folder under DEST."""
    try:
        result = backups.backup(current_app.config["SQLALCHEMY_DATABASE_URI"], dest, keep)
    except backups.BackupError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    m = result.manifest
    click.echo(f"backup {result.folder} ({m['size']} bytes, sha256 {m['sha256'][:16]}…)")
    for code, head in sorted(m["heads"].items()):
        click.echo(f"  {code} head {head['seq']}:{head['hash']}")
    for path in result.deleted:
        click.echo(f"deleted old backup {path}")


@click.command("static-export")
@click.argument("dest", type=click.Path(file_okay=False))
@with_appcontext
def static_export_command(dest: str):
    """Write the static files under their hashed names into DEST/static/ for nginx."""
    from pathlib import Path

    from ..static_files import export

    for path in export(current_app, Path(dest)):
        click.echo(str(path))


@click.command("housekeeping")
@with_appcontext
def housekeeping_command():
    """Delete used and expired pay codes, old attempt counters and expired sessions (daily)."""
    from .housekeeping import retention, run

    keep = retention()
    deleted = run()
    click.echo(
        f"deleted {deleted['pay_code']} pay codes (older than {keep.pay_code_days} days), "
        f"{deleted['login_throttle']} attempt counters ({keep.throttle_days} days), "
        f"{deleted['user_session']} expired sessions ({keep.session_days} days)"
    )


@click.command("restore")
@click.argument("src", type=click.Path(exists=True))
@with_appcontext
def restore_command(src: str):
    """Restore a backup folder made by `flask backup` into an empty database, then verify it."""
    from ..extensions import db
    from ..ledger.chain import verify

    uri = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        manifest = backups.restore(uri, src)
    except backups.BackupError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    db.engine.dispose()  # connections made before the restore saw an empty database
    problems = verify(full=True)
    for p in problems:
        click.echo(f"BAD {p}", err=True)
    heads = backups.current_heads(uri)
    if heads != manifest["heads"]:
        click.echo(f"BAD chain heads {heads} are not the backup's {manifest['heads']}", err=True)
        sys.exit(1)
    if problems:
        sys.exit(1)
    click.echo(f"restored {src} (made {manifest['created_at']}, revision {manifest['revision']})")
    for code, head in sorted(heads.items()):
        click.echo(f"  {code} head {head['seq']}:{head['hash']} as at backup time")
    click.echo("ledger OK: every chain and balance verifies")
