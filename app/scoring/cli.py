import click
from flask.cli import AppGroup

from .services import post_due

notices_cli = AppGroup("notices", help="The public notice board (公示).")


@notices_cli.command("post")
def post_command():
    """Post every item whose notice period ended with no open objection (run it daily)."""
    n = post_due()
    click.echo(f"posted {n} item(s)")
