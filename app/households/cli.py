import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..villages.models import Village
from .importer import import_households

households_cli = AppGroup("households", help="Households of a village.")


@households_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--village",
    "village_code",
    default=None,
    help="Village code (needed when there is more than one village).",
)
def import_command(file: Path, village_code: str | None):
    """Import households from FILE (.csv or .xlsx); all rows or none."""
    q = select(Village)
    if village_code:
        q = q.where(Village.code == village_code)
    villages = db.session.scalars(q.limit(2)).all()
    if len(villages) != 1:
        click.echo("Name the village with --village CODE.", err=True)
        sys.exit(2)
    try:
        result = import_households(villages[0].id, file.name, file.read_bytes(), None)
    except DomainError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    for row, column, message in result.errors:
        click.echo(f"row {row}, {column}: {message}", err=True)
    if result.errors:
        click.echo(f"Nothing imported: {result.bad_rows} rows are wrong.", err=True)
        sys.exit(1)
    for row, why in result.skipped:
        click.echo(f"row {row} skipped: {why}")
    for row, column, note in result.notes:
        click.echo(f"row {row}, {column}: {note}")
    if result.imported_at is not None:
        click.echo(f"This file was already imported ({result.imported_at:%Y-%m-%d %H:%M} UTC).")
        return
    click.echo(f"Imported {len(result.rows)} households into {villages[0].code}.")
