"""Email through an outbox.

``queue_email`` renders a message and adds it to the caller's transaction (on PostgreSQL with a
``NOTIFY outbox`` that is delivered when, and only if, it commits). Who sends it depends on
OUTBOX_DELIVERY:

- ``"worker"`` (the default): its own process, ``flask outbox worker`` (``run_worker``), which waits for
  new mail (LISTEN on PostgreSQL, a short poll on SQLite) and sends it. A web worker never talks to
  SMTP, so no request is slowed by, or tells anything through, the sending of mail.
- ``"inline"`` (tests, browser journeys): in the process that queued it, once its transaction has
  committed (``deliver_after_request``: after the response, or before it with
  OUTBOX_SEND_AFTER_RESPONSE off; ``deliver_after_appcontext``: at the end of a command).

Either way a rolled-back change never sends mail and a failed send never undoes the change.
``send_due`` is the one sender: a message is claimed with a conditional UPDATE before it is sent, so two
senders never send it twice; the status is then written as a writer, retried while the database is
locked, and every attempt carries the message's own Message-ID. Failures are retried with exponential
back-off. Sent messages keep their address and body only as long as needed: at once for erased
accounts, OUTBOX_RETENTION_DAYS for others.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from flask import Response, current_app, g, has_request_context, render_template
from flask_mail import Message
from sqlalchemy import Engine, func, insert, null, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from portal.database import begin_write
from portal.extensions import db, mail
from portal.models import OutboxMessage, OutboxStatus, Status, User, utcnow

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=15)
CHANNEL = "outbox"  # PostgreSQL: queue_email notifies it, the worker listens
# The worker: how often it re-queues interrupted sends and erases old sent mail, and (PostgreSQL) the
# longest it sleeps without a notification (retries become due by the clock, not by a NOTIFY).
RELEASE_EVERY = 60.0
PURGE_EVERY = 3600.0
LISTEN_WAKE_EVERY = 30.0
# Messages that go to an address the account no longer has (the goodbye after erasure): their
# address and body are erased as soon as they are sent.
ERASE_WHEN_SENT = frozenset({"account_deleted"})
ERASED = {"recipient": "erased", "subject": "(erased)", "body_text": "", "body_html": "", "headers": null()}


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for an email, always on PUBLIC_BASE_URL.

    Never built from the current request: its Host header is whatever the client sent, and a forged
    one would put the attacker's host in front of a reset token."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"].rstrip("/"))
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    current_app.inject_url_defaults(endpoint, values)
    return adapter.build(endpoint, values, force_external=True)


def _plain(text: str) -> str:
    """Text parts are rendered with autoescape like HTML, so no user-supplied tag ever appears;
    quotes and ampersands are then given back so "O'Brien" and "AT&T" read as typed."""
    return text.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")


def render_email(template: str, subject: str, **context) -> tuple[str, str]:
    """The text and HTML parts of ``email/<template>``."""
    context.setdefault("site_name", current_app.config["SITE_NAME"])
    context.setdefault("home_url", external_url("main.index"))
    text = _plain(render_template(f"email/{template}.txt", subject=subject, **context))
    html = render_template(f"email/{template}.html", subject=subject, **context)
    return text, html


def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    template: str,
    user_id: int | None = None,
    headers: dict[str, str] | None = None,
    about_user_id: int | None = None,
    **context,
):
    """Render ``email/<template>.txt`` and ``.html`` and add the message to the caller's transaction.
    ``about_user_id``: the person the message tells the recipient about (erased with that person)."""
    msg = OutboxMessage(
        **_message_row(to, subject, template, user_id=user_id, headers=headers, about_user_id=about_user_id, **context)
    )
    session.add(msg)
    session.flush()
    _queued(session, [msg.id])
    return msg


def queue_emails(session: Session, messages: list[dict]) -> list[int]:
    """Many ``queue_email`` calls at once (an import's invitations): each message rendered the same way,
    all inserted in one statement. ``messages``: the keyword arguments of ``queue_email`` (``to``,
    ``subject``, ``template``, ...). Returns the new rows' ids, in order."""
    if not messages:
        return []
    rows = [_message_row(**m) for m in messages]
    ids = list(session.scalars(insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True), rows))
    _queued(session, ids)
    return ids


def _message_row(
    to: str,
    subject: str,
    template: str,
    user_id: int | None = None,
    headers: dict[str, str] | None = None,
    about_user_id: int | None = None,
    **context,
) -> dict:
    text, html = render_email(template, subject, **context)
    return {
        "recipient": to,
        "subject": re.sub(r"[\r\n]+", " ", subject)[:255],
        "body_text": text,
        "body_html": html,
        "template": template,
        "user_id": user_id,
        "about_user_id": about_user_id,
        "headers": headers or None,
        "message_id": new_message_id(),
    }


def _queued(session: Session, ids: list[int]) -> None:
    """Messages just added: wake the worker when this commits (PostgreSQL), send them after the commit
    with "inline" delivery."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, "")))  # delivered when, and only if, this commits
    if has_request_context():
        g.setdefault("outbox_ids", []).extend(ids)
    else:  # a CLI command or job: sent when its app context ends (see deliver_after_appcontext)
        session.info.setdefault("outbox_ids", []).extend(ids)


def new_message_id() -> str:
    """A Message-ID on the public host, made once per message and sent with every attempt."""
    return make_msgid("outbox", domain=urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost")


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def _claim(session: Session, msg_id: int) -> bool:
    begin_write(session)
    res = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == msg_id, OutboxMessage.status == OutboxStatus.QUEUED)
        .values(status=OutboxStatus.SENDING, claimed_at=utcnow())
    )
    session.commit()
    return res.rowcount == 1


def _write_status(session: Session, msg: OutboxMessage, values: dict, sent: bool) -> None:
    """Record what became of a send; this write must not be lost.

    Begun as a writer (SQLite: BEGIN IMMEDIATE, so the erase check's read cannot leave a snapshot that
    another writer's commit makes impossible to upgrade), and retried while the database is locked or
    unreachable, for up to OUTBOX_STATUS_WRITE_PATIENCE seconds: a message the SMTP server has taken must
    not stay ``sending``, or ``release_stuck`` would queue it again and it would be delivered twice."""
    patience = current_app.config["OUTBOX_STATUS_WRITE_PATIENCE"]
    deadline = time.monotonic() + patience
    pause = 0.05
    while True:
        try:
            begin_write(session)
            if sent and _erase_when_sent(session, msg):
                values = {**values, **ERASED}
            session.execute(update(OutboxMessage).where(OutboxMessage.id == msg.id).values(**values))
            session.commit()
            return
        except OperationalError as exc:
            session.rollback()
            if time.monotonic() >= deadline:
                log.error("email %s: could not record its status for %s s: %s", msg.id, patience, exc)
                raise
            log.warning("email %s: status write failed, retrying in %.2f s: %s", msg.id, pause, exc)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _as_mail(msg: OutboxMessage) -> Message:
    message = Message(
        subject=msg.subject,
        recipients=[msg.recipient],
        body=msg.body_text,
        html=msg.body_html,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
        extra_headers=dict(msg.headers or {}),
    )
    if msg.message_id:  # always, except for rows written before Message-IDs were stored
        message.msgId = msg.message_id
    return message


def _send_one(session: Session, msg: OutboxMessage) -> bool | None:
    """Claim, send, record: the claim (a conditional UPDATE) makes sure one sender sends it; the message's
    stored Message-ID goes with every attempt. True: sent; False: failed (retried later); None: not
    claimed (another sender has it, or the database was too busy to claim it: it stays queued)."""
    try:
        if not _claim(session, msg.id):
            return None
    except OperationalError as exc:  # nothing was sent: the next round tries again
        session.rollback()
        log.warning("email %s not claimed, left queued: %s", msg.id, exc)
        return None
    try:
        mail.send(_as_mail(msg))
    except Exception as exc:  # any transport failure: keep the message and try later
        attempts = msg.attempts + 1
        gave_up = attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]
        failed = {
            "status": OutboxStatus.FAILED if gave_up else OutboxStatus.QUEUED,
            "attempts": attempts,
            "last_error": f"{type(exc).__name__}: {exc}"[:2000],
            "next_attempt_at": utcnow() + _backoff(attempts),
            "claimed_at": None,
        }
        _write_status(session, msg, failed, sent=False)
        log.warning("email %s to %s not sent (attempt %s): %s", msg.id, msg.recipient, attempts, exc)
        return False
    done = {"status": OutboxStatus.SENT, "sent_at": utcnow(), "attempts": msg.attempts + 1, "last_error": None}
    _write_status(session, msg, done, sent=True)
    return True


def _erase_when_sent(session: Session, msg: OutboxMessage) -> bool:
    if msg.template in ERASE_WHEN_SENT:
        return True
    return (
        msg.user_id is not None and session.scalar(select(User.status).where(User.id == msg.user_id)) == Status.DELETED
    )


def purge_sent(session: Session, now: datetime | None = None) -> int:
    """Erase address, subject and body of sent messages of deleted accounts, and of every sent message
    older than OUTBOX_RETENTION_DAYS. The rows stay (counts, audit); their personal data goes."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["OUTBOX_RETENTION_DAYS"])
    deleted_users = select(User.id).where(User.status == Status.DELETED)
    res = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.recipient != ERASED["recipient"],
            or_(
                OutboxMessage.sent_at < cutoff,
                OutboxMessage.user_id.in_(deleted_users),
                OutboxMessage.template.in_(sorted(ERASE_WHEN_SENT)),
            ),
        )
        .values(**ERASED)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return res.rowcount


def release_stuck(session: Session) -> int:
    """Messages claimed by a sender that died are queued again after STUCK_AFTER."""
    res = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at < utcnow() - STUCK_AFTER)
        .values(status=OutboxStatus.QUEUED, claimed_at=None)
    )
    session.commit()
    return res.rowcount


def retry_failed(
    session: Session, ids: list[int] | None = None, max_age: timedelta = timedelta(days=2)
) -> tuple[int, int]:
    """Queue again the messages that gave up after OUTBOX_MAX_ATTEMPTS (an outage longer than the
    back-off covers), with a fresh count of attempts, due now. Only those written within ``max_age``
    (older ones carry links that have expired and news that is stale) and still addressed to their
    account's current email (a body for an address the person has left must not go there).
    Returns (queued again, left failed)."""
    q = (
        select(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.created_at, User.email, User.status)
        .outerjoin(User, User.id == OutboxMessage.user_id)
        .where(OutboxMessage.status == OutboxStatus.FAILED)
    )
    if ids is not None:
        q = q.where(OutboxMessage.id.in_(ids))
    since = utcnow() - max_age
    retry, left = [], 0
    for msg_id, recipient, created_at, email, status in session.execute(q).all():
        moved = email is not None and (email != recipient or status == Status.DELETED)
        if created_at < since or moved:
            left += 1
        else:
            retry.append(msg_id)
    if retry:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(retry), OutboxMessage.status == OutboxStatus.FAILED)
            .values(status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=utcnow(), claimed_at=None)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return len(retry), left


def send_due(
    ids: list[int] | None = None,
    limit: int = 200,
    include_not_due: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[int, int]:
    """Send queued messages (those named, or all that are due). Returns (sent, failed).
    ``should_stop``: asked before each message; the one being sent is finished first."""
    sent = failed = 0
    # expire_on_commit=False: reading an expired attribute after a commit would open a read
    # transaction that SQLite cannot upgrade to a write if another sender wrote meanwhile.
    with Session(db.engine, expire_on_commit=False) as session:
        q = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.QUEUED)
        if ids is not None:
            q = q.where(OutboxMessage.id.in_(ids))
        elif not include_not_due:
            q = q.where(OutboxMessage.next_attempt_at <= utcnow())
        messages = session.scalars(q.order_by(OutboxMessage.id).limit(limit)).all()
        session.commit()
        # Plain values from here on: a rollback (a status write retried) would expire attached rows, and
        # reading one then would begin a read transaction behind the sender's back.
        session.expunge_all()
        for msg in messages:
            if should_stop is not None and should_stop():
                break
            outcome = _send_one(session, msg)
            if outcome is True:
                sent += 1
            elif outcome is False:
                failed += 1
    return sent, failed


def _deliver(ids: list[int]) -> None:
    """Send the messages a request queued, then, if that worked, retry a few older due ones."""
    try:
        sent, failed = send_due(ids=ids)
        if sent and not failed:
            send_due(limit=20)
    except Exception:  # never fail the user's request because of mail
        log.exception("sending queued email failed")


def deliver_after_request(response: Response) -> Response:
    """after_request hook (OUTBOX_DELIVERY "inline"): send what this request queued once the response
    has been sent. With "worker" delivery it does nothing: ``flask outbox worker`` sends.

    ``call_on_close`` runs when the WSGI server closes the response, after the body went out and after
    the request's teardown (so a view that did not commit has been rolled back: its rows do not exist
    and nothing is sent). With OUTBOX_SEND_AFTER_RESPONSE off, mail is sent here, before answering.
    """
    ids = g.pop("outbox_ids", None)
    if not ids or current_app.config["OUTBOX_DELIVERY"] != "inline":
        return response
    if not current_app.config["OUTBOX_SEND_AFTER_RESPONSE"]:
        _deliver(ids)
        return response
    app = current_app._get_current_object()
    once = threading.Lock()
    timer: threading.Timer | None = None

    def send_after_response():
        if not once.acquire(blocking=False):  # closed and timed out: one of the two sends
            return
        if timer is not None:
            timer.cancel()
        with app.app_context():
            _deliver(ids)

    response.call_on_close(send_after_response)
    # A server may be slow to close a response: werkzeug's development server (`flask run`, the
    # browser tests) first drains the connection, which can wait for the browser to let it go. The
    # mail must not wait for that: after a short grace it is sent from a timer thread anyway. By then
    # the request has committed or rolled back; only committed rows exist to be sent.
    timer = threading.Timer(current_app.config["OUTBOX_SEND_GRACE_SECONDS"], send_after_response)
    timer.daemon = True
    timer.start()
    return response


def deliver_after_appcontext(exc: BaseException | None = None) -> tuple[int, int] | None:
    """teardown_appcontext hook, and the end of a command's transaction: with "inline" delivery, send what
    a command queued (only rows that were committed exist) and return (sent, failed). None with "worker"
    delivery: nothing is sent here, the worker sends it."""
    try:
        session = db.session()
    except Exception:
        return None
    ids = session.info.pop("outbox_ids", None)
    if current_app.config["OUTBOX_DELIVERY"] != "inline":
        return None
    if not ids:
        return 0, 0
    try:
        return send_due(ids=ids)
    except Exception:
        log.exception("sending queued email failed")
        return 0, len(ids)


# --- the worker: flask outbox worker ----------------------------------------------------------------------------------


class _Wakeup:
    """How the worker waits for new mail: LISTEN on PostgreSQL (woken by queue_email's NOTIFY as its
    transaction commits), a poll every ``poll`` seconds on SQLite. Either wait ends early on ``stop``.
    A listening connection that breaks (the server restarted) is replaced at the next wait; meanwhile
    the worker polls."""

    def __init__(self, engine: Engine, poll: float, stop: threading.Event):
        self.engine, self.poll, self.stop, self.listener = engine, poll, stop, None
        self.listens = engine.dialect.name == "postgresql"

    def start(self) -> None:
        if self.listens:
            self.listener = self._listen()

    def _listen(self):
        raw = self.engine.raw_connection()
        listener = raw.driver_connection  # a psycopg Connection
        raw.detach()  # the worker's own for its life, never back in the pool in autocommit
        listener.autocommit = True
        listener.execute(f"LISTEN {CHANNEL}")
        return listener

    def wait(self) -> None:
        if not self.listens:
            self.stop.wait(self.poll)
            return
        try:
            if self.listener is None:
                # Mail queued while no one listened is found by the round that follows this wait.
                self.listener = self._listen()
                return
            deadline = time.monotonic() + LISTEN_WAKE_EVERY
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # in slices of at most a second, so a signal's stop is seen soon
                if list(self.listener.notifies(timeout=min(left, 1.0), stop_after=1)):
                    return
        except Exception as exc:  # the connection broke: poll until a new one listens
            log.warning("the outbox worker's LISTEN connection failed (%s); listening again", exc)
            self.close()
            self.stop.wait(self.poll)

    def close(self) -> None:
        if self.listener is not None:
            try:
                self.listener.close()
            finally:
                self.listener = None


def run_worker(
    stop: threading.Event,
    poll: float | None = None,
    once: bool = False,
    report: Callable[[str], None] = log.info,
) -> tuple[int, int]:
    """Send mail until ``stop`` is set (a signal: the message being sent is finished first): what is due,
    then wait for more. Every RELEASE_EVERY seconds interrupted sends are queued again, every PURGE_EVERY
    old sent mail is erased. ``once``: one round, then return. Returns (sent, failed) over the worker's life."""
    poll = current_app.config["OUTBOX_WORKER_POLL_SECONDS"] if poll is None else poll
    wakeup = _Wakeup(db.engine, poll, stop)
    if not once:
        wakeup.start()  # before the first round: nothing committed after that round began is missed
    total_sent = total_failed = 0
    released_at = purged_at = None
    try:
        while not stop.is_set():
            try:
                if released_at is None or time.monotonic() - released_at >= RELEASE_EVERY:
                    with Session(db.engine) as session:
                        released = release_stuck(session)
                    released_at = time.monotonic()
                    if released:
                        report(f"{released} interrupted message(s) re-queued.")
                if purged_at is None or time.monotonic() - purged_at >= PURGE_EVERY:
                    with Session(db.engine) as session:
                        purged = purge_sent(session)
                    purged_at = time.monotonic()
                    if purged:
                        report(f"{purged} sent message(s) erased.")
                while not stop.is_set():
                    sent, failed = send_due(limit=200, should_stop=stop.is_set)
                    total_sent, total_failed = total_sent + sent, total_failed + failed
                    if sent or failed:
                        report(f"Sent {sent}, failed {failed}.")
                    if sent + failed == 0 or failed:  # nothing more to send, or the server is failing: wait
                        break
            except Exception:
                if once:
                    raise
                log.exception("the outbox worker's round failed; trying again")  # e.g. the database restarting
                stop.wait(poll)
            if once:
                break
            wakeup.wait()
    finally:
        wakeup.close()
    return total_sent, total_failed
