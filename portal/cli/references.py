"""flask references expire"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import mail_outcome, transaction
from portal.extensions import db
from portal.services import references

references_cli = AppGroup("references", help="Reference requests.")


@references_cli.command("expire")
def expire():
    """Expire the asks not answered in time and tell their requesters (run from cron, e.g. hourly)."""
    with transaction() as work:
        n = references.expire_due(db.session)
    click.echo(f"{n} ask(s) expired; {mail_outcome(work)}.")
