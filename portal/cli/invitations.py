"""flask invitations remind"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import mail_outcome, transaction
from portal.extensions import db
from portal.services import invitations

invitations_cli = AppGroup("invitations", help="Invitations to join the program.")


@invitations_cli.command("remind")
def remind():
    """Send the one reminder to each invitation still open after 7 days (run daily from cron); an
    invitation is reminded once, then never again."""
    with transaction() as work:
        count = invitations.remind_due(db.session)
    click.echo(f"{count} invitation reminder(s) queued; {mail_outcome(work)}.")
