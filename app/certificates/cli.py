import os
import sys

import click
from flask import current_app, url_for
from flask.cli import AppGroup
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..households.models import Household
from ..villages.models import Village
from . import services

certificates_cli = AppGroup("certificates", help="Points certificates (积分证明).")


def _url(village: Village, serial: str) -> str:
    # The address villagers reach the site by: the config's, else the environment's, else the
    # address `make run` serves on.
    base = (
        current_app.config.get("PUBLIC_BASE_URL")
        or os.environ.get("PUBLIC_BASE_URL")
        or "http://127.0.0.1:5000"
    )
    with current_app.test_request_context(base_url=base):
        return base.rstrip("/") + url_for("certificates.verify", code=village.code, serial=serial)


@certificates_cli.command("issue")
@click.option("--village", "village_code", required=True, help="Village code.")
@click.option("--household", "number", required=True, help="Household number (户号).")
def issue_command(village_code: str, number: str):
    """Issue a certificate; prints its serial and verification URL."""
    village = db.session.scalar(select(Village).where(Village.code == village_code))
    if village is None:
        click.echo(f"No village {village_code}.", err=True)
        sys.exit(1)
    household = db.session.scalar(
        select(Household).where(Household.village_id == village.id, Household.number == number)
    )
    if household is None:
        click.echo(f"No household {number} in {village_code}.", err=True)
        sys.exit(1)
    cert = services.issue(village.id, household.id, None)
    click.echo(cert.serial)
    click.echo(_url(village, cert.serial))


@certificates_cli.command("revoke")
@click.argument("serial")
@click.option("--reason", default="revoked by command", show_default=True)
def revoke_command(serial: str, reason: str):
    """Revoke the certificate SERIAL."""
    from .models import Certificate

    cert = db.session.scalar(
        select(Certificate).where(Certificate.serial == services.normalise_serial(serial))
    )
    if cert is None:
        click.echo(f"No certificate {serial}.", err=True)
        sys.exit(1)
    try:
        services.revoke(cert.village_id, cert.serial, reason, None)
    except DomainError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    click.echo(f"Revoked {cert.serial}.")
