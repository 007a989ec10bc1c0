"""`flask notices post`: run it once a day, e.g. from cron

    30 0 * * *  cd /srv/village-points && .venv/bin/flask --app wsgi notices post

or a systemd timer (OnCalendar=*-*-* 00:30). Running it twice, or twice at once, posts each item
once: see services.post_item."""

import click
from flask.cli import AppGroup

from .services import post_due

notices_cli = AppGroup("notices", help="The public notice board (公示).")


@notices_cli.command("post")
def post_command():
    """Post every item whose notice period ended with no open objection (run it daily)."""
    n = post_due()
    click.echo(f"posted {n} item(s)")
