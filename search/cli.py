"""flask search reindex | sync | check | optimize (through the search backend, search.backend())"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.extensions import db
from search import backend, documents
from search.schema import ADVOCATES, OPPORTUNITIES
from search.seam import IndexUnavailable

search_cli = AppGroup("search", help="The search index.")


@search_cli.command("reindex")
@click.option("--procs", type=int, default=None, help="Writer processes (default: up to 2).")
def reindex(procs):
    """Build a new index beside the live one and swap it in (search keeps answering)."""
    total = len(documents.all_advocate_ids(db.session))
    db.session.commit()
    with click.progressbar(length=total, label="Indexing advocates", show_pos=True) as bar:
        counts = backend().rebuild(db.engine, progress=bar.update, procs=procs)
    click.echo(f"Indexed {counts[ADVOCATES]:,} advocates and {counts[OPPORTUNITIES]:,} opportunities; swapped in.")


@search_cli.command("sync")
@click.option(
    "--refresh-fatigue/--no-refresh-fatigue",
    default=True,
    help="Also requeue advocates whose fatigue status changed with time (run daily).",
)
def sync(refresh_fatigue):
    """Apply pending index changes (and time-dependent ones)."""
    try:
        report = backend().sync(db.engine, refresh_fatigue=refresh_fatigue)
    except IndexUnavailable as exc:
        raise click.ClickException(f"{exc}. Run 'flask search reindex'.") from None
    if report.rebuilt is not None:
        click.echo(f"There was no index; built one with {report.rebuilt:,} advocates.")
    if report.fatigue_changed:
        click.echo(f"{report.fatigue_changed} advocate(s) changed fatigue status.")
    click.echo(f"Applied {report.applied} pending change(s).")


@search_cli.command("check")
def check():
    """Report drift between the index and the database; exit 1 if any."""
    try:
        problems = backend().check(db.session)
    except IndexUnavailable as exc:
        raise click.ClickException(f"{exc}. Run 'flask search reindex'.") from None
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("The index matches the database.")


@search_cli.command("optimize")
def optimize():
    """Merge the index segments into a new generation and swap it in (e.g. nightly).

    The live index's writer lock is not held meanwhile: changes saved during the merge are written to
    the live index at once and applied to the merged one after the swap."""
    try:
        counts = backend().optimize(db.engine, progress=lambda kind: click.echo(f"Merging the {kind} index..."))
    except IndexUnavailable as exc:
        raise click.ClickException(f"{exc}. Run 'flask search reindex'.") from None
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Optimized: {counts[ADVOCATES]:,} advocates and {counts[OPPORTUNITIES]:,} opportunities "
        "in one segment each; swapped in."
    )
