"""Thin CLI commands: each parses arguments and calls one service."""

import sys

import click
from flask import Flask
from sqlalchemy import select

from .extensions import db


def register(app: Flask) -> None:
    from .benchdata import bench_cli
    from .certificates.cli import certificates_cli
    from .households.cli import households_cli
    from .ledger.cli import ledger_cli
    from .scoring.cli import notices_cli

    app.cli.add_command(ledger_cli)
    app.cli.add_command(households_cli)
    app.cli.add_command(notices_cli)
    app.cli.add_command(bench_cli)
    app.cli.add_command(certificates_cli)
    from .ops.cli import (
        backup_command,
        housekeeping_command,
        restore_command,
        static_export_command,
    )

    app.cli.add_command(static_export_command)

    app.cli.add_command(backup_command)
    app.cli.add_command(housekeeping_command)
    app.cli.add_command(restore_command)

    @app.cli.command("demo")
    @click.option("--if-empty", is_flag=True, help="Only when the database has no village yet.")
    def demo_command(if_empty: bool):
        """Load the demo village 双塘村 (idempotent)."""
        from .demo import load_demo
        from .villages.models import Village

        if if_empty and db.session.scalar(select(Village.id).limit(1)) is not None:
            click.echo("The database already has villages; demo not loaded.")
            return
        created = load_demo()
        click.echo(
            "Demo village 双塘村 (code shuangtang) " + ("loaded." if created else "already there.")
        )
        click.echo("Logins (password demo1234): admin, scorer, shop, canteen, 13800000001")

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option(
        "--village",
        "village_code",
        default=None,
        help="Village code: makes a village admin (the village is created if new). "
        "Without it: a county admin.",
    )
    @click.option("--village-name", default=None, help="Name of a new village.")
    def create_admin(
        username: str, password: str, village_code: str | None, village_name: str | None
    ):
        """Create the first admin of a real install."""
        from .auth.services import create_user
        from .errors import DomainError
        from .villages.models import Village
        from .villages.services import create_village

        try:
            if village_code is None:
                create_user(
                    village_id=None, role="county_admin", username=username, password=password
                )
            else:
                village = db.session.scalar(select(Village).where(Village.code == village_code))
                if village is None:
                    create_village(
                        village_code, village_name or village_code, username, password, None
                    )
                else:
                    create_user(
                        village_id=village.id,
                        role="village_admin",
                        username=username,
                        password=password,
                    )
        except DomainError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)
        click.echo(f"Created {username}.")
