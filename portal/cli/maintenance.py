"""flask maintenance analyze"""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from portal.database import refresh_statistics
from portal.extensions import db

maintenance_cli = AppGroup("maintenance", help="Keeping the database fast.")


@maintenance_cli.command("analyze")
def analyze():
    """Refresh the database's query planner statistics (daily from cron; SQLite has none until this runs)."""
    started = time.perf_counter()
    refresh_statistics(db.engine)
    click.echo(f"Planner statistics refreshed in {time.perf_counter() - started:.1f} s.")
