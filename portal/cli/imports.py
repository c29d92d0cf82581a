"""flask advocates import FILE: the admin's CSV import from the command line (the same code path)."""

from __future__ import annotations

from pathlib import Path

import click

from portal.cli.advocates import advocates_cli
from portal.cli.common import transaction
from portal.extensions import db
from portal.models import ImportJob
from portal.services import imports

SHOWN_PROBLEMS = 20


def _mapping(header: list[str], options: tuple[str, ...], start: dict[str, str]) -> dict[str, str]:
    mapping = dict(start)
    for option in options:
        column, sep, field = option.partition("=")
        if not sep or column not in header:
            raise click.BadParameter(
                f"{option!r}: use COLUMN=FIELD with a column of the file's header.", param_hint="--mapping"
            )
        if field and field not in imports.FIELDS:
            raise click.BadParameter(f"{field!r} is not one of: {', '.join(imports.FIELDS)}.", param_hint="--mapping")
        mapping = {c: f for c, f in mapping.items() if f != field or not field}
        mapping[column] = field
    return {c: f for c, f in mapping.items() if f}


@advocates_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Which field a column fills (FIELD empty: ignore it). Repeatable.",
)
@click.option("--yes", is_flag=True, help="Import without asking for confirmation.")
def import_advocates(file: Path, mappings: tuple[str, ...], yes: bool):
    """Invite the people of a CSV file (as the admin's import page does); shows the problems first."""
    with transaction():
        job = imports.upload(db.session, file.name, file.read_bytes(), actor_id=None)
        mapping = _mapping(job.header, mappings, job.mapping)
        imports.set_mapping(db.session, job, mapping, actor_id=None)
        result = imports.check(db.session, job)
        job_id, encoding = job.id, job.encoding
    click.echo(
        f"{file.name}: {len(result.rows)} row(s), read as {encoding}; mapping: "
        + ", ".join(f"{c} -> {f}" for c, f in mapping.items())
    )
    for row in result.with_problems[:SHOWN_PROBLEMS]:
        click.echo(f"  line {row.line} {row.email or '(no email)'}: " + "; ".join(p.message for p in row.problems))
    if len(result.with_problems) > SHOWN_PROBLEMS:
        click.echo(f"  ... and {len(result.with_problems) - SHOWN_PROBLEMS} more row(s) with problems")
    click.echo(f"{len(result.valid)} to invite, {result.skipped} to skip.")
    if not result.valid:
        click.echo("Nothing to import.")
        return
    if not yes and not click.confirm(f"Invite {len(result.valid)} people by email now?"):
        click.echo("Not imported (the upload is kept as a mapped import on the admin's import page).")
        return
    with transaction():
        imports.start(db.session, db.session.get(ImportJob, job_id), actor_id=None)
    with click.progressbar(length=len(result.rows), label="Inviting") as bar:
        seen = {"done": 0}

        def on_progress(done: int, total: int) -> None:
            bar.update(done - seen["done"])
            seen["done"] = done

        job = imports.run(db.session, job_id, on_progress)
    click.echo(f"Invited {job.invited}; skipped {job.skipped}; rows with problems {job.problems}.")
