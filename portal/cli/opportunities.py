"""flask digest send --period weekly|monthly · flask opportunities announce"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from portal.cli.common import mail_outcome, transaction
from portal.extensions import db
from portal.models import utcnow
from portal.services import digest

digest_cli = AppGroup("digest", help="The opportunity digest.")
opportunities_cli = AppGroup("opportunities", help="Opportunity announcements.")


@digest_cli.command("send")
@click.option("--period", type=click.Choice(["weekly", "monthly"]), required=True)
def send(period):
    """Email each advocate who chose this period the new opportunities they are eligible for."""
    with transaction() as work:
        sent, skipped = digest.send(db.session, period)
    click.echo(
        f"{sent} digest(s) queued, {skipped} advocate(s) skipped (nothing new or already sent); {mail_outcome(work)}."
    )


@opportunities_cli.command("announce")
@click.option(
    "--days",
    type=click.IntRange(1, 60),
    default=digest.ANNOUNCE_WINDOW.days,
    show_default=True,
    help="Announce opportunities first opened within this many days (a missed run is caught up).",
)
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=500, show_default=True, help="Advocates per transaction."
)
def announce(days, batch):
    """Tell advocates who asked for it about newly opened opportunities that match them (run from cron,
    e.g. hourly; nobody is told twice about one opportunity)."""
    now, after, sent, skipped, works = utcnow(), 0, 0, 0, []
    while True:  # one write transaction per batch of advocates: others keep writing meanwhile
        with transaction() as work:
            n, s, after = digest.announce(db.session, now=now, window=timedelta(days=days), after_id=after, limit=batch)
        works.append(work)
        sent, skipped = sent + n, skipped + s
        if after is None:
            break
    click.echo(
        f"{sent} announcement(s) queued, {skipped} advocate(s) skipped (nothing new for them); {mail_outcome(*works)}."
    )
