"""flask points verify · flask badges evaluate"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli.common import transaction
from portal.extensions import db
from portal.services import badges, points

points_cli = AppGroup("points", help="The points ledger.")
badges_cli = AppGroup("badges", help="Badges.")


@points_cli.command("verify")
def verify():
    """Check every cached balance against the ledger; exit 1 on any difference."""
    problems = points.verify(db.session)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("All balances agree with the ledger.")


@badges_cli.command("evaluate")
def evaluate():
    """Grant automatic badges that are due (e.g. one year as an advocate); run daily."""
    with transaction():
        granted = badges.evaluate_all(db.session)
    click.echo(f"Granted {granted} badge(s).")
