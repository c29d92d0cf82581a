"""flask search reindex | sync | check | optimize"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.extensions import db
from search import rebuild as rb
from search.indexing import (
    ADVOCATES,
    OPPORTUNITIES,
    IndexUnavailable,
    apply_all_pending,
    index_exists,
    queue,
    wait_for_merges,
    writer_for,
)

search_cli = AppGroup("search", help="The search index.")


@search_cli.command("reindex")
@click.option("--procs", type=int, default=None, help="Writer processes (default: up to 2).")
def reindex(procs):
    """Build a new index beside the live one and swap it in (search keeps answering)."""
    total = len(rb.documents.all_advocate_ids(db.session))
    db.session.commit()
    with click.progressbar(length=total, label="Indexing advocates", show_pos=True) as bar:
        counts = rb.rebuild(db.engine, progress=bar.update, procs=procs)
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
        if not index_exists():  # lost (or a new install): an empty index would hide everyone not queued
            counts = rb.rebuild(db.engine)
            click.echo(f"There was no index; built one with {counts[ADVOCATES]:,} advocates.")
        if refresh_fatigue:
            changed = rb.stale_fatigue(db.session)
            queue(db.session, ADVOCATES, changed)
            db.session.commit()
            if changed:
                click.echo(f"{len(changed)} advocate(s) changed fatigue status.")
        # While a rebuild really runs (its lock is held) the rows applied are kept for its new generation
        # and it applies them itself; a marker left by a killed rebuild is removed and ignored.
        total = apply_all_pending(db.engine)
        for kind in (ADVOCATES, OPPORTUNITIES):  # fold the small segments of the day's updates
            with writer_for(kind, merge=True):
                pass
        wait_for_merges()
    except IndexUnavailable as exc:
        raise click.ClickException(f"{exc}. Run 'flask search reindex'.") from None
    click.echo(f"Applied {total} pending change(s).")


@search_cli.command("check")
def check():
    """Report drift between the index and the database; exit 1 if any."""
    try:
        problems = rb.check(db.session)
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
        counts = rb.optimize(db.engine, progress=lambda kind: click.echo(f"Merging the {kind} index..."))
    except IndexUnavailable as exc:
        raise click.ClickException(f"{exc}. Run 'flask search reindex'.") from None
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Optimized: {counts[ADVOCATES]:,} advocates and {counts[OPPORTUNITIES]:,} opportunities "
        "in one segment each; swapped in."
    )
