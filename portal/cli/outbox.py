"""flask outbox worker | send | retry-failed | status"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OutboxMessage
from portal.services import outbox

outbox_cli = AppGroup("outbox", help="The email outbox.")


@outbox_cli.command("worker")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=None,
    help="SQLite: seconds between looks for new mail (default OUTBOX_WORKER_POLL_SECONDS). PostgreSQL listens.",
)
@click.option("--once", is_flag=True, help="Send what is due, then exit (the worker's round, once).")
def worker(poll, once):
    """Send email as it is queued, until stopped (SIGTERM or Ctrl-C: the message being sent is finished).

    Run one beside the web server (more are safe: each message is claimed before it is sent). It waits
    for new mail (LISTEN on PostgreSQL, a poll on SQLite), retries failures with back-off, re-queues
    sends interrupted by a crash and erases old sent mail, as 'flask outbox send' does from cron."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()  # only there can signals be handled
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        if not once:
            click.echo("The outbox worker is sending email (Ctrl-C to stop).", err=True)
        sent, failed = outbox.run_worker(stop, poll=poll, once=once, report=lambda line: click.echo(line, err=True))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"Sent {sent}, failed {failed}.")


@outbox_cli.command("send")
@click.option("--all", "send_all", is_flag=True, help="Also send messages whose retry time has not come yet.")
def send(send_all):
    """Send queued emails that are due (retries with back-off), then erase the address and body of
    sent messages older than OUTBOX_RETENTION_DAYS (and of erased accounts)."""
    released = outbox.release_stuck(db.session)
    total_sent = total_failed = 0
    while True:
        sent, failed = outbox.send_due(limit=200, include_not_due=send_all)
        total_sent += sent
        total_failed += failed
        if sent + failed < 200 or failed:
            break
    msg = f"Sent {total_sent}, failed {total_failed}."
    if released:
        msg += f" {released} interrupted message(s) re-queued."
    purged = outbox.purge_sent(db.session)
    if purged:
        msg += f" {purged} sent message(s) erased."
    click.echo(msg)


@outbox_cli.command("retry-failed")
@click.option("--id", "ids", type=int, multiple=True, help="Only this message (repeatable).")
@click.option(
    "--max-age-days",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Only messages written in the last N days (older links have expired).",
)
def retry_failed(ids, max_age_days):
    """Queue again the messages that gave up after OUTBOX_MAX_ATTEMPTS (then 'flask outbox send')."""
    n, left = outbox.retry_failed(db.session, list(ids) if ids else None, timedelta(days=max_age_days))
    msg = f"{n} failed message(s) queued again."
    if left:
        msg += f" {left} left failed: older than {max_age_days} days, or their account's address changed."
    if n:
        msg += " Run 'flask outbox send' to send them now."
    click.echo(msg)


@outbox_cli.command("status")
def status():
    """Count messages by status."""
    rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    if not rows:
        click.echo("The outbox is empty.")
    for st, n in rows:
        click.echo(f"{st.value:8} {n}")
    if any(st.value == "failed" and n for st, n in rows):
        click.echo("Failed messages gave up retrying; 'flask outbox retry-failed' queues them again.")
