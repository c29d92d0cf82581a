"""flask digest send --period weekly|monthly"""
from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import commit
from portal.extensions import db
from portal.services import digest
from portal.services.outbox import send_due

digest_cli = AppGroup("digest", help="The opportunity digest.")


@digest_cli.command("send")
@click.option("--period", type=click.Choice(["weekly", "monthly"]), required=True)
def send(period):
    """Email each advocate who chose this period the new opportunities they are eligible for."""
    from portal.database import begin_write

    begin_write(db.session)
    sent, skipped = digest.send(db.session, period)
    commit()
    delivered, failed = send_due()
    click.echo(f"{sent} digest(s) queued, {skipped} advocate(s) skipped (nothing new or already sent); "
               f"{delivered} email(s) sent, {failed} waiting for retry.")
