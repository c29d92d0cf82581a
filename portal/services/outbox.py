"""Email through an outbox.

``queue_email`` renders a message and adds it to the caller's transaction; it is sent only after
that transaction commits (``deliver_after_request`` runs after the view, in its own session, so a
rolled-back change never sends mail and a failed send never undoes the change). ``send_due``
retries what failed, with exponential back-off; a message is claimed with a conditional UPDATE
before it is sent, so two senders never send it twice.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta

from flask import current_app, g, has_request_context, render_template, url_for
from flask_mail import Message
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.extensions import db, mail
from portal.models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=15)


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for an email, inside or outside a request."""
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def _plain(text: str) -> str:
    """Text parts are rendered with autoescape like HTML, so no user-supplied tag ever appears;
    quotes and ampersands are then given back so "O'Brien" and "AT&T" read as typed."""
    return text.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")


def queue_email(session, *, to: str, subject: str, template: str, user_id: int | None = None,
                headers: dict[str, str] | None = None, **context):
    """Render ``email/<template>.txt`` and ``.html`` and add the message to the caller's transaction."""
    context.setdefault("site_name", current_app.config["SITE_NAME"])
    context.setdefault("home_url", external_url("main.index"))
    text = _plain(render_template(f"email/{template}.txt", subject=subject, **context))
    html = render_template(f"email/{template}.html", subject=subject, **context)
    msg = OutboxMessage(
        recipient=to,
        subject=re.sub(r"[\r\n]+", " ", subject)[:255],
        body_text=text,
        body_html=html,
        template=template,
        user_id=user_id,
        headers=headers or None,
    )
    session.add(msg)
    session.flush()
    if has_request_context():
        g.setdefault("outbox_ids", []).append(msg.id)
    else:  # a CLI command or job: sent when its app context ends (see deliver_after_appcontext)
        session.info.setdefault("outbox_ids", []).append(msg.id)
    return msg


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def _claim(session: Session, msg_id: int) -> bool:
    now = utcnow()
    res = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == msg_id, OutboxMessage.status == OutboxStatus.QUEUED)
        .values(status=OutboxStatus.SENDING, claimed_at=now)
    )
    session.commit()
    return res.rowcount == 1


def _send_one(session: Session, msg: OutboxMessage) -> bool:
    if not _claim(session, msg.id):
        return False
    message = Message(
        subject=msg.subject,
        recipients=[msg.recipient],
        body=msg.body_text,
        html=msg.body_html,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
        extra_headers=dict(msg.headers or {}),
    )
    try:
        mail.send(message)
    except Exception as exc:  # any transport failure: keep the message and try later
        attempts = msg.attempts + 1
        gave_up = attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg.id)
            .values(
                status=OutboxStatus.FAILED if gave_up else OutboxStatus.QUEUED,
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                next_attempt_at=utcnow() + _backoff(attempts),
                claimed_at=None,
            )
        )
        session.commit()
        log.warning("email %s to %s not sent (attempt %s): %s", msg.id, msg.recipient, attempts, exc)
        return False
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == msg.id)
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), attempts=msg.attempts + 1, last_error=None)
    )
    session.commit()
    return True


def release_stuck(session: Session) -> int:
    """Messages claimed by a sender that died are queued again after STUCK_AFTER."""
    res = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at < utcnow() - STUCK_AFTER)
        .values(status=OutboxStatus.QUEUED, claimed_at=None)
    )
    session.commit()
    return res.rowcount


def send_due(ids: list[int] | None = None, limit: int = 200, include_not_due: bool = False) -> tuple[int, int]:
    """Send queued messages (those named, or all that are due). Returns (sent, failed)."""
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
        for msg in messages:
            if _send_one(session, msg):
                sent += 1
            else:
                failed += 1
    return sent, failed


def deliver_after_request(response):
    """after_request hook: send what this request queued, then retry a few older ones."""
    ids = g.pop("outbox_ids", None)
    if not ids or not current_app.config["OUTBOX_SEND_AFTER_REQUEST"]:
        return response
    try:
        sent, failed = send_due(ids=ids)
        if sent and not failed:
            send_due(limit=20)
    except Exception:  # never fail the user's request because of mail
        log.exception("sending queued email failed")
    return response


def deliver_after_appcontext(exc=None):
    """teardown_appcontext hook: send what a command queued (only rows that were committed exist)."""
    try:
        session = db.session()
    except Exception:
        return
    ids = session.info.pop("outbox_ids", None)
    if not ids or not current_app.config["OUTBOX_SEND_AFTER_REQUEST"]:
        return
    try:
        send_due(ids=ids)
    except Exception:
        log.exception("sending queued email failed")
