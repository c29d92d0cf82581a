"""flask reports refresh"""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from portal.cli.common import reading, transaction
from portal.extensions import db
from portal.models import utcnow
from portal.services import reporting

reports_cli = AppGroup("reports", help="The program dashboard.")


@reports_cli.command("refresh")
def refresh():
    """Keep the dashboard's figures of the current and the previous month, quarter and year, so the page
    reads them instead of grouping every participation of the period (cron, every 15 minutes)."""
    started, now = time.perf_counter(), utcnow()
    periods = reporting.standard_periods(now.date())
    for period in periods:
        with reading():  # seconds for a year at 50,000 advocates; the write below is short
            shown = reporting.figures(db.session, period, now)
        with transaction():
            reporting.keep(db.session, shown)
    with transaction():
        removed = reporting.forget_old(db.session, now)
    click.echo(
        f"Figures kept for {len(periods)} periods in {time.perf_counter() - started:.1f} s; "
        f"{removed} out-of-date kept figure(s) removed."
    )
