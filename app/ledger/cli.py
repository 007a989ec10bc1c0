import sys

import click
from flask.cli import AppGroup

from .chain import MIN_HEAD_HEX, head_is_in_chain, parse_head, verify

ledger_cli = AppGroup("ledger", help="The points ledger.")


@ledger_cli.command("verify")
@click.option("--village", "village_code", default=None, help="Only this village (code).")
@click.option(
    "--head",
    default=None,
    metavar="COUNT:HASH",
    help="Also check that a chain head written down earlier is still in the chain.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Walk every entry from the first (default: only what is new since the last clean run).",
)
def verify_command(village_code: str | None, head: str | None, full: bool):
    """Check every hash chain and every balance; exit 1 naming the first bad entry."""
    problems = verify(village_code, full=full)
    for p in problems:
        click.echo(f"BAD {p}", err=True)
    if head:
        from sqlalchemy import select

        from ..extensions import db
        from ..villages.models import Village

        parsed = parse_head(head)
        villages = db.session.scalars(
            select(Village).where(Village.code == village_code) if village_code else select(Village)
        ).all()
        if parsed is None or len(villages) != 1:
            click.echo(
                f"--head needs COUNT:HASH with at least {MIN_HEAD_HEX} hex characters of the hash "
                "(fewer could be forged) and one village (--village CODE)",
                err=True,
            )
            sys.exit(2)
        if not head_is_in_chain(villages[0].id, *parsed):
            click.echo(f"BAD head {head} is not part of today's chain", err=True)
            sys.exit(1)
        click.echo(f"head {head} is part of today's chain")
    if problems:
        sys.exit(1)
    click.echo("ledger OK: every chain and balance verifies")


@ledger_cli.command("rank")
@click.option("--village", "village_code", default=None, help="Only this village (code).")
def rank_command(village_code: str | None):
    """Rank every village's households by points earned this year (also done by `flask notices
    post`); pages show the rank as of this run."""
    from sqlalchemy import select

    from ..extensions import db
    from ..villages.models import Village
    from .services import recompute_ranks

    q = select(Village.id, Village.code)
    if village_code:
        q = q.where(Village.code == village_code)
    for vid, code in db.session.execute(q).all():
        click.echo(f"{code}: {recompute_ranks(vid)} households ranked")
