"""flask advocates remind-stale · flask lists seed"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import mail_outcome, transaction
from portal.extensions import db
from portal.services import lists, subscriptions
from portal.services.badges import ensure_default_badges

advocates_cli = AppGroup("advocates", help="Advocate maintenance.")
lists_cli = AppGroup("lists", help="The lists admins manage (industries, products, countries, ...).")


@advocates_cli.command("remind-stale")
def remind_stale():
    """Email each stale advocate (at most once every 30 days; respects their preferences)."""
    with transaction() as work:
        count = subscriptions.remind_stale(db.session)
    click.echo(f"Queued {count} reminder(s); {mail_outcome(work)}.")


@lists_cli.command("seed")
def seed_lists():
    """Add the default industries, products, size bands, regions, countries, activity types and badges."""
    with transaction():
        added = lists.ensure_defaults(db.session)
        added += ensure_default_badges(db.session)
    click.echo(f"Added {added} list item(s)." if added else "All default list items are present.")
