"""The email outbox: mail is written in the transaction that causes it, sent only after that commits,
retried with back-off when the SMTP server is down, sent exactly once even by concurrent senders, and
given up after OUTBOX_MAX_ATTEMPTS. User content is escaped in both parts of a message.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal import create_app
from portal.extensions import db
from portal.models import Consent, OutboxMessage, OutboxStatus, Status, User, utcnow
from portal.services import outbox
from tests.support import LiveServer, csrf_from, free_port, login, post_form, reload

PASSWORD = "purple-otter-skates-42"


# --- helpers -----------------------------------------------------------------------------------------------------


@pytest.fixture
def smtp_down(app_config):
    """The app's SMTP server is a port nothing listens on."""
    app_config["MAIL_PORT"] = free_port()
    return app_config


@pytest.fixture
def smtp_up(app_config, mailbox):
    """Build a second app on the same database whose mail goes to the real test SMTP server
    (Flask-Mail reads MAIL_PORT once, in init_app, so changing app.config later has no effect)."""
    built = []

    def make():
        other = create_app({**app_config, "MAIL_PORT": mailbox.port})
        built.append(other)
        return other

    yield make
    for other in built:
        with other.app_context():
            db.engine.dispose()


def register(client, email: str, name: str = "Dee Doe"):
    return post_form(
        client,
        "/auth/register",
        {
            "name": name,
            "email": email,
            "company": "Initech",
            "job_title": "CIO",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "accept_terms": "y",
        },
    )


def messages(**filters) -> list[OutboxMessage]:
    db.session.rollback()
    db.session.expire_all()
    q = select(OutboxMessage).filter_by(**filters).order_by(OutboxMessage.id)
    return list(db.session.scalars(q))


def queue(to: str, name: str = "Pat", subject: str = "You are approved", **kw) -> int:
    """Queue an 'approved' email outside a request and commit; returns the message id."""
    msg = outbox.queue_email(
        db.session,
        to=to,
        subject=subject,
        template="approved",
        name=name,
        login_url="http://localhost/auth/login",
        **kw,
    )
    msg_id = msg.id  # read before the commit expires it: reading after would open an SQLite snapshot
    db.session.commit()
    db.session.info.pop("outbox_ids", None)  # leave sending to the test, not to the context's teardown
    return msg_id


def seconds_until(moment) -> float:
    return (moment - utcnow()).total_seconds()


def cli(application, *args) -> str:
    """Run `flask outbox ...` on ``application`` (Flask's CLI reuses the current app context when one is
    pushed, as the test's is, so push this app's own)."""
    with application.app_context():
        result = application.test_cli_runner().invoke(args=["outbox", *args])
    assert result.exit_code == 0, result.output
    return result.output


# --- the SMTP server is down --------------------------------------------------------------------------------------


def test_registration_survives_smtp_down_and_the_mail_is_sent_exactly_once_later(
    smtp_down, smtp_up, app, client, runner, mailbox
):
    resp = register(client, "dee@example.com")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/auth/check-email")

    db.session.rollback()
    user = db.session.scalar(select(User).where(User.email == "dee@example.com"))
    assert user is not None and user.status == Status.UNVERIFIED
    assert db.session.scalar(select(Consent).where(Consent.user_id == user.id)) is not None

    [msg] = messages(recipient="dee@example.com")
    assert msg.status == OutboxStatus.QUEUED
    assert msg.attempts == 1
    assert msg.last_error and ("Connection" in msg.last_error or "refused" in msg.last_error.lower())
    assert msg.sent_at is None and msg.claimed_at is None
    assert 30 < seconds_until(msg.next_attempt_at) <= 61  # first retry in a minute
    assert msg.user_id == user.id and msg.template == "verify_email"
    assert mailbox.to("dee@example.com") == []

    # Not due yet: a plain `outbox send` leaves it alone (the fixture app's SMTP is still down anyway).
    result = runner.invoke(args=["outbox", "send"])
    assert result.exit_code == 0 and "Sent 0, failed 0" in result.output
    assert messages(recipient="dee@example.com")[0].attempts == 1

    up = smtp_up()
    assert "Sent 1, failed 0" in cli(up, "send", "--all")
    assert len(mailbox.wait_for("dee@example.com")) == 1
    assert "Sent 0, failed 0" in cli(up, "send", "--all")
    assert "Sent 0, failed 0" in cli(up, "send")
    time.sleep(0.2)
    assert len(mailbox.to("dee@example.com")) == 1

    [msg] = messages(recipient="dee@example.com")
    assert msg.status == OutboxStatus.SENT and msg.attempts == 2 and msg.last_error is None
    assert msg.sent_at is not None

    # The late mail still works: its link confirms the address.
    mail = mailbox.last("dee@example.com")
    assert mail.subject == "Confirm your email address"
    link = mail.link("/auth/verify/")
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert post_form(client, "/" + path, {}).status_code == 302
    assert reload(User, user.id).status == Status.PENDING


def test_failed_cli_send_reports_failures(smtp_down, app, runner, mailbox):
    queue("fail1@example.com")
    queue("fail2@example.com")
    result = runner.invoke(args=["outbox", "send", "--all"])
    assert result.exit_code == 0
    assert "Sent 0, failed 2" in result.output
    assert {m.attempts for m in messages()} == {1}


# --- only what commits is sent --------------------------------------------------------------------------------------


def test_message_rolled_back_is_never_sent(app, runner, mailbox):
    outbox.queue_email(
        db.session, to="ghost@example.com", subject="Boo", template="approved", name="G", login_url="http://localhost/"
    )
    db.session.rollback()
    assert messages() == []
    assert outbox.send_due(include_not_due=True) == (0, 0)
    assert "Sent 0, failed 0" in runner.invoke(args=["outbox", "send", "--all"]).output
    time.sleep(0.2)
    assert mailbox.to("ghost@example.com") == []


def test_queued_in_a_command_is_sent_when_its_context_ends_if_committed(app, mailbox):
    with app.app_context():  # a fresh context, like a CLI command's
        outbox.queue_email(
            db.session,
            to="cmd@example.com",
            subject="From a command",
            template="approved",
            name="C",
            login_url="http://localhost/",
        )
        db.session.commit()
        assert mailbox.to("cmd@example.com") == []  # not before the context ends
    assert len(mailbox.wait_for("cmd@example.com")) == 1
    with app.app_context():
        outbox.queue_email(
            db.session,
            to="cmd.rolledback@example.com",
            subject="Never",
            template="approved",
            name="C",
            login_url="http://localhost/",
        )
        db.session.rollback()
    time.sleep(0.2)
    assert mailbox.to("cmd.rolledback@example.com") == []
    assert [m.recipient for m in messages()] == ["cmd@example.com"]


def _join_grace_timers():
    """Wait for the grace timers' sends (they run in threading.Timer threads): a send still writing when
    the test's database is torn down would lock SQLite and leave its row to the next test."""
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.join(15)


@pytest.fixture
def mail_routes(app):
    """Views that queue mail and then commit, forget to commit, or crash."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def _queue(to):
        outbox.queue_email(
            db.session, to=to, subject="From a view", template="approved", name="V", login_url="http://localhost/"
        )

    @app.route("/test-mail/commit")
    def commit_view():
        _queue("view.commit@example.com")
        db.session.commit()
        return "ok"

    @app.route("/test-mail/no-commit")
    def no_commit_view():
        _queue("view.nocommit@example.com")
        return "ok"

    @app.route("/test-mail/crash")
    def crash_view():
        _queue("view.crash@example.com")
        raise RuntimeError("after queueing")

    yield app
    _join_grace_timers()  # before the app's teardown drops the database (this fixture is set up after the app)


def test_view_that_commits_sends_after_the_request(mail_routes, client, mailbox):
    assert client.get("/test-mail/commit").status_code == 200
    assert len(mailbox.wait_for("view.commit@example.com")) == 1
    [msg] = messages()
    assert msg.status == OutboxStatus.SENT and msg.attempts == 1


def test_view_that_does_not_commit_sends_nothing(mail_routes, client, mailbox):
    assert client.get("/test-mail/no-commit").status_code == 200
    assert client.get("/test-mail/crash").status_code == 500
    time.sleep(0.2)
    assert mailbox.to("view.nocommit@example.com") == []
    assert mailbox.to("view.crash@example.com") == []
    assert messages() == []
    assert outbox.send_due(include_not_due=True) == (0, 0)


# --- concurrency ----------------------------------------------------------------------------------------------------


def test_concurrent_senders_send_each_message_exactly_once(app, mailbox, monkeypatch):
    ids = [queue(f"c{i}@example.com", name=f"C{i}") for i in range(12)]
    threads_n = 4
    barrier = threading.Barrier(threads_n, timeout=20)
    real_claim = outbox._claim
    local = threading.local()

    def claim_after_everyone_has_read(session, msg_id):
        # every sender has loaded the same 12 queued messages before any of them claims one
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return real_claim(session, msg_id)

    monkeypatch.setattr(outbox, "_claim", claim_after_everyone_has_read)
    results, errors = [], []

    def sender():
        try:
            with app.app_context():
                results.append(outbox.send_due(include_not_due=True))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == threads_n
    assert sum(sent for sent, _ in results) == 12
    time.sleep(0.2)
    for i in range(12):
        assert len(mailbox.to(f"c{i}@example.com")) == 1, i
    assert len(mailbox.messages) == 12
    rows = messages()
    assert [m.id for m in rows] == ids
    assert all(m.status == OutboxStatus.SENT and m.attempts == 1 for m in rows)


def test_a_claimed_message_is_not_sent_again(app, mailbox):
    msg_id = queue("claimed@example.com")
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(status=OutboxStatus.SENDING, claimed_at=utcnow())
        )
    assert outbox.send_due(include_not_due=True) == (0, 0)
    assert outbox.send_due(ids=[msg_id]) == (0, 0)
    assert mailbox.to("claimed@example.com") == []


def test_interrupted_sends_are_requeued_after_a_while(app, runner, mailbox):
    stuck = queue("stuck@example.com")
    recent = queue("recent@example.com")
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == stuck)
            .values(status=OutboxStatus.SENDING, claimed_at=utcnow() - timedelta(minutes=20))
        )
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == recent)
            .values(status=OutboxStatus.SENDING, claimed_at=utcnow() - timedelta(minutes=1))
        )
    out = runner.invoke(args=["outbox", "send"]).output
    assert "Sent 1, failed 0" in out and "1 interrupted message(s) re-queued" in out
    assert len(mailbox.wait_for("stuck@example.com")) == 1
    assert mailbox.to("recent@example.com") == []  # another sender may still be sending it
    assert reload(OutboxMessage, recent).status == OutboxStatus.SENDING


@pytest.fixture
def short_busy_timeout(app_config):
    app_config["SQLITE_BUSY_TIMEOUT_MS"] = 200
    return app_config


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's single writer; PostgreSQL has row locks
def test_status_after_a_send_waits_out_a_lock_longer_than_the_busy_timeout(short_busy_timeout, app, make_user, mailbox):
    """Another writer holds SQLite's write lock while the message is handed to SMTP and for a while after
    (longer than the busy timeout): the SENT status must still be recorded, not left ``sending`` for
    ``release_stuck`` to queue again (issue 11: mail delivered twice, 15 minutes apart)."""
    import sqlite3

    from portal.extensions import mail

    app.config["OUTBOX_STATUS_WRITE_PATIENCE"] = 30
    owner = make_user()  # a message with an owner: the sender reads the owner's status before writing
    msg_id = queue("locked.out@example.com", user_id=owner.id)
    path = db.engine.url.database
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    real_send = mail.send
    released = threading.Event()

    def send_then_lock(message):
        real_send(message)
        other.execute("BEGIN IMMEDIATE")  # another request starts writing as the SMTP server answers...
        other.execute("UPDATE users SET name = name WHERE id = ?", (owner.id,))

        def release():
            other.execute("COMMIT")  # ...and commits only after twice the busy timeout
            released.set()

        threading.Timer(0.6, release).start()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mail, "send", send_then_lock)
        assert outbox.send_due(ids=[msg_id]) == (1, 0)
    assert released.wait(5)
    other.close()
    msg = reload(OutboxMessage, msg_id)
    assert msg.status == OutboxStatus.SENT and msg.attempts == 1 and msg.sent_at is not None
    assert len(mailbox.to("locked.out@example.com")) == 1


def test_every_attempt_carries_the_message_id_made_when_it_was_queued(smtp_down, app, smtp_up, mailbox):
    msg_id = queue("same.id@example.com")
    stored = reload(OutboxMessage, msg_id).message_id
    assert stored and stored.startswith("<") and stored.endswith("@localhost>")  # the host of PUBLIC_BASE_URL
    assert outbox.send_due(include_not_due=True) == (0, 1)  # the first attempt fails
    assert reload(OutboxMessage, msg_id).message_id == stored
    up = smtp_up()
    assert "Sent 1, failed 0" in cli(up, "send", "--all")
    [first] = mailbox.wait_for("same.id@example.com")
    assert first.message["Message-ID"] == stored
    # A sender died between the SMTP hand-over and the status write: the message goes again after
    # release_stuck, and is recognisably the same message.
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(status=OutboxStatus.SENDING, claimed_at=utcnow() - timedelta(minutes=20))
        )
    assert "Sent 1, failed 0" in cli(up, "send", "--all")
    again = mailbox.wait_for("same.id@example.com", count=2)
    assert [m.message["Message-ID"] for m in again] == [stored, stored]
    db.session.rollback()  # end the read snapshot reload() left open before writing
    other = queue("other.id@example.com")
    assert reload(OutboxMessage, other).message_id != stored


# --- back-off and giving up -------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped():
    assert [outbox._backoff(n) for n in (1, 2, 3, 4, 5)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert outbox._backoff(9) == timedelta(minutes=256)
    assert outbox._backoff(10) == outbox._backoff(30) == timedelta(minutes=360)


def test_each_failure_pushes_the_next_attempt_further(smtp_down, app):
    msg_id = queue("later@example.com")
    for attempt, minutes in ((1, 1), (2, 2), (3, 4)):
        assert outbox.send_due(include_not_due=True) == (0, 1)
        msg = reload(OutboxMessage, msg_id)
        assert msg.attempts == attempt and msg.status == OutboxStatus.QUEUED
        assert minutes * 60 - 10 < seconds_until(msg.next_attempt_at) <= minutes * 60 + 1
    # a due-only run does not touch it now
    assert outbox.send_due() == (0, 0)
    assert reload(OutboxMessage, msg_id).attempts == 3


def test_outbox_send_without_all_skips_messages_not_yet_due(smtp_down, app, smtp_up, mailbox):
    waiting = queue("waiting@example.com")
    due = queue("due@example.com")
    assert outbox.send_due() == (0, 2)  # both fail once: the server is down
    with db.engine.begin() as conn:  # time passes for one of them
        conn.execute(
            update(OutboxMessage).where(OutboxMessage.id == due).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    up = smtp_up()
    assert "Sent 1, failed 0" in cli(up, "send")
    assert len(mailbox.wait_for("due@example.com")) == 1
    assert mailbox.to("waiting@example.com") == []
    w = reload(OutboxMessage, waiting)
    assert w.status == OutboxStatus.QUEUED and w.attempts == 1
    assert "Sent 1, failed 0" in cli(up, "send", "--all")
    assert len(mailbox.wait_for("waiting@example.com")) == 1
    assert len(mailbox.to("due@example.com")) == 1


def test_gives_up_after_max_attempts(smtp_down, app, smtp_up, mailbox):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    msg_id = queue("never@example.com")
    for expected in (1, 2):
        outbox.send_due(include_not_due=True)
        m = reload(OutboxMessage, msg_id)
        assert m.status == OutboxStatus.QUEUED and m.attempts == expected
    outbox.send_due(include_not_due=True)
    m = reload(OutboxMessage, msg_id)
    assert m.status == OutboxStatus.FAILED and m.attempts == 3 and m.last_error
    assert outbox.send_due(include_not_due=True) == (0, 0)  # failed is final
    assert reload(OutboxMessage, msg_id).attempts == 3
    up = smtp_up()
    assert "Sent 0, failed 0" in cli(up, "send", "--all")
    assert mailbox.to("never@example.com") == []
    assert "failed" in cli(up, "status") and "1" in cli(up, "status") and "retry-failed" in cli(up, "status")
    # An outage longer than the back-off loses nothing: the operator queues the failed ones again.
    assert "1 failed message(s) queued again." in cli(up, "retry-failed")
    m = reload(OutboxMessage, msg_id)
    assert m.status == OutboxStatus.QUEUED and m.attempts == 0
    assert "Sent 1, failed 0" in cli(up, "send")
    assert len(mailbox.to("never@example.com")) == 1
    assert reload(OutboxMessage, msg_id).status == OutboxStatus.SENT
    assert "0 failed message(s) queued again." in cli(up, "retry-failed")  # nothing sent twice
    assert "Sent 0, failed 0" in cli(up, "send", "--all") and len(mailbox.to("never@example.com")) == 1


def test_retry_failed_leaves_old_mail_and_mail_to_a_left_address(smtp_down, app, smtp_up, mailbox, make_user):
    """Requeued mail must still make sense: not a week-old link, not a body for an address the person left."""
    from datetime import timedelta

    from sqlalchemy import update as sql_update

    app.config["OUTBOX_MAX_ATTEMPTS"] = 1
    moved = make_user(email="moved.on@example.com")
    recent = queue("recent@example.com")
    old = queue("old@example.com")
    to_old_address = queue("moved.on@example.com", user_id=moved.id)
    outbox.send_due(include_not_due=True)
    assert {reload(OutboxMessage, i).status for i in (recent, old, to_old_address)} == {OutboxStatus.FAILED}
    db.session.execute(
        sql_update(OutboxMessage).where(OutboxMessage.id == old).values(created_at=utcnow() - timedelta(days=3))
    )
    db.session.execute(sql_update(User).where(User.id == moved.id).values(email="new.home@example.com"))
    db.session.commit()

    up = smtp_up()
    out = cli(up, "retry-failed")
    assert "1 failed message(s) queued again." in out and "2 left failed" in out
    assert "Sent 1, failed 0" in cli(up, "send")
    assert len(mailbox.to("recent@example.com")) == 1
    assert mailbox.to("old@example.com") == [] and mailbox.to("moved.on@example.com") == []
    assert reload(OutboxMessage, old).status == reload(OutboxMessage, to_old_address).status == OutboxStatus.FAILED
    assert "1 failed message(s) queued again." in cli(up, "retry-failed", "--max-age-days", "7", "--id", str(old))
    assert "Sent 1, failed 0" in cli(up, "send") and len(mailbox.to("old@example.com")) == 1


def test_default_max_attempts_is_used(smtp_down, app):
    assert app.config["OUTBOX_MAX_ATTEMPTS"] == 12
    msg_id = queue("twelve@example.com")
    with db.engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == msg_id).values(attempts=10))
    outbox.send_due(include_not_due=True)
    assert reload(OutboxMessage, msg_id).status == OutboxStatus.QUEUED
    outbox.send_due(include_not_due=True)
    m = reload(OutboxMessage, msg_id)
    assert m.status == OutboxStatus.FAILED and m.attempts == 12


def test_status_command(app, runner):
    assert "The outbox is empty." in runner.invoke(args=["outbox", "status"]).output
    queue("s1@example.com")
    queue("s2@example.com")
    out = runner.invoke(args=["outbox", "status"]).output
    assert "queued" in out and "2" in out


# --- a successful send after a request also retries older due messages -----------------------------------------------


def _old_message(to: str, *, status=OutboxStatus.QUEUED, due: bool = True, attempts: int = 1) -> int:
    msg_id = queue(to)
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(
                status=status,
                attempts=attempts,
                last_error="ConnectionRefusedError: earlier",
                next_attempt_at=utcnow() + (timedelta(minutes=-1) if due else timedelta(minutes=30)),
            )
        )
    return msg_id


def test_successful_send_after_request_retries_older_due_messages(app, client, advocate, mailbox):
    old_due = _old_message("old.due@example.com")
    old_later = _old_message("old.later@example.com", due=False)
    old_failed = _old_message("old.failed@example.com", status=OutboxStatus.FAILED, attempts=12)
    resp = post_form(client, "/auth/forgot-password", {"email": advocate.email})
    assert resp.status_code == 302
    assert mailbox.last(advocate.email).subject == "Reset your password"
    assert len(mailbox.wait_for("old.due@example.com")) == 1
    time.sleep(0.2)
    assert mailbox.to("old.later@example.com") == [] and mailbox.to("old.failed@example.com") == []
    assert reload(OutboxMessage, old_due).status == OutboxStatus.SENT
    assert reload(OutboxMessage, old_due).attempts == 2
    assert reload(OutboxMessage, old_later).status == OutboxStatus.QUEUED
    assert reload(OutboxMessage, old_failed).status == OutboxStatus.FAILED


def test_failed_send_after_request_does_not_retry_older_messages(smtp_down, app, client, advocate):
    old_due = _old_message("old.due2@example.com")
    resp = post_form(client, "/auth/forgot-password", {"email": advocate.email})
    assert resp.status_code == 302  # the user's request succeeds all the same
    new = messages(recipient=advocate.email)
    assert len(new) == 1 and new[0].attempts == 1 and new[0].status == OutboxStatus.QUEUED
    old = reload(OutboxMessage, old_due)
    assert old.attempts == 1 and old.status == OutboxStatus.QUEUED  # not hammered while the server is down


# --- message content --------------------------------------------------------------------------------------------------


def test_user_content_is_escaped_in_text_and_html(client, mailbox):
    name = "<script>alert(1)</script> O'Brien & <b>Co</b>"
    assert register(client, "xss@example.com", name=name).status_code == 302
    mail = mailbox.last("xss@example.com")
    for part in (mail.text, mail.html):
        assert "<script>" not in part and "<b>" not in part
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "&lt;b&gt;Co&lt;/b&gt;" in mail.html
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt; O'Brien & &lt;b&gt;Co&lt;/b&gt;," in mail.text
    [stored] = messages(recipient="xss@example.com")
    assert "<script>" not in stored.body_html and "<script>" not in stored.body_text


def test_quotes_and_ampersands_read_as_typed_in_text(app, mailbox):
    queue("q@example.com", name='Ann "AJ" O\'Neil & Sons')
    outbox.send_due()
    mail = mailbox.last("q@example.com")
    assert 'Hello Ann "AJ" O\'Neil & Sons,' in mail.text
    assert "O&#39;Neil &amp; Sons" in mail.html and ("&#34;AJ&#34;" in mail.html or "&quot;AJ&quot;" in mail.html)


def test_subject_cannot_inject_headers(app, mailbox):
    queue("victim@example.com", subject="Hello\r\nBcc: attacker@example.com\nX-Evil: 1")
    outbox.send_due()
    mail = mailbox.last("victim@example.com")
    assert mail.recipients == ["victim@example.com"]
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert "\n" not in mail.subject and "Bcc: attacker@example.com" in mail.subject
    time.sleep(0.2)
    assert mailbox.to("attacker@example.com") == []


def test_extra_headers_and_sender_are_sent(app, mailbox):
    queue("h@example.com", headers={"List-Unsubscribe": "<http://localhost/me/unsubscribe/x>"})
    outbox.send_due()
    mail = mailbox.last("h@example.com")
    assert mail.message["List-Unsubscribe"] == "<http://localhost/me/unsubscribe/x>"
    assert "advocates@example.com" in str(mail.message["From"])
    assert mail.text and mail.html  # multipart/alternative with both parts
    assert "http://localhost/auth/login" in mail.text and 'href="http://localhost/auth/login"' in mail.html


# --- an SMTP server that accepts the connection and never answers -----------------------------------------------------


class SilentSMTP:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word (no SMTP greeting)."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)  # held open, never written to

    def close(self):
        self.running = False
        self.sock.close()
        for conn in self.conns:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def smtp_silent(app_config):
    server = SilentSMTP()
    app_config.update(MAIL_PORT=server.port, MAIL_TIMEOUT=1)
    yield server
    server.close()


def test_mail_timeout_bounds_a_send_to_a_silent_server(smtp_silent, app):
    assert app.config["MAIL_TIMEOUT"] == 1
    msg_id = queue("silent@example.com")
    start = time.monotonic()
    assert outbox.send_due(ids=[msg_id]) == (0, 1)
    assert time.monotonic() - start < 5  # without a timeout smtplib waits for the greeting forever
    msg = reload(OutboxMessage, msg_id)
    assert msg.status == OutboxStatus.QUEUED and msg.attempts == 1
    assert "timed out" in msg.last_error.lower() or "timeout" in msg.last_error.lower()


def test_mail_timeout_default_is_ten_seconds(app):
    from portal.extensions import mail

    assert app.config["MAIL_TIMEOUT"] == 10
    assert app.extensions["mail"].timeout == 10 and mail.connect().mail.timeout == 10


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return result


@pytest.fixture
def smtp_silent_3s(smtp_silent, app_config):
    app_config["MAIL_TIMEOUT"] = 3
    return smtp_silent


def test_registration_answers_at_once_while_smtp_never_answers(after_response, smtp_silent_3s, app, smtp_up, mailbox):
    """SMTP accepts TCP and then says nothing: the page must not wait for it (it used to hang for good,
    Flask-Mail opening smtplib.SMTP without a timeout, inside after_request)."""
    import requests

    live = LiveServer(app)
    try:
        with requests.Session() as browser:
            token = csrf_from(browser.get(live.url + "/auth/register", timeout=10).text)
            start = time.monotonic()
            resp = browser.post(
                live.url + "/auth/register",
                allow_redirects=False,
                timeout=10,
                data={
                    "csrf_token": token,
                    "name": "Quiet Quinn",
                    "email": "quiet@example.com",
                    "company": "Initech",
                    "job_title": "CIO",
                    "password": PASSWORD,
                    "confirm": PASSWORD,
                    "accept_terms": "y",
                },
            )
            elapsed = time.monotonic() - start
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/check-email")
        assert elapsed < 2.0, elapsed  # well under MAIL_TIMEOUT: the answer did not wait on SMTP
        # The account is there at once; the mail was tried after the response and stays queued.
        db.session.rollback()
        assert db.session.scalar(select(User).where(User.email == "quiet@example.com")) is not None
        [msg] = _wait_for(lambda: [m for m in messages(recipient="quiet@example.com") if m.attempts == 1])
    finally:
        live.stop()
    assert msg.status == OutboxStatus.QUEUED and msg.sent_at is None
    assert "timed out" in msg.last_error.lower() or "timeout" in msg.last_error.lower()
    assert mailbox.to("quiet@example.com") == []
    up = smtp_up()
    assert "Sent 1, failed 0" in cli(up, "send", "--all")
    assert "Sent 0, failed 0" in cli(up, "send", "--all")
    time.sleep(0.2)
    assert len(mailbox.to("quiet@example.com")) == 1
    assert mailbox.last("quiet@example.com").subject == "Confirm your email address"


def test_after_response_mail_goes_when_the_response_is_closed(after_response, mail_routes, client, mailbox):
    resp = client.get("/test-mail/commit")
    assert resp.status_code == 200
    time.sleep(0.2)
    assert mailbox.to("view.commit@example.com") == []  # not while the response is still being sent
    [msg] = messages()
    assert msg.status == OutboxStatus.QUEUED and msg.attempts == 0
    resp.close()  # what a WSGI server does once the body is out
    assert len(mailbox.wait_for("view.commit@example.com")) == 1
    assert messages()[0].status == OutboxStatus.SENT
    resp.close()
    time.sleep(0.2)
    assert len(mailbox.to("view.commit@example.com")) == 1  # closing twice sends nothing twice


def test_after_response_mail_goes_after_a_grace_when_the_server_is_slow_to_close(
    after_response, mail_routes, client, mailbox
):
    """werkzeug's development server may hold a response open while it drains the connection (the
    browser tests saw mail wait for that): the mail still goes after OUTBOX_SEND_GRACE_SECONDS."""
    resp = client.get("/test-mail/commit")  # never closed
    assert resp.status_code == 200
    assert mailbox.to("view.commit@example.com") == []
    assert len(mailbox.wait_for("view.commit@example.com", timeout=10)) == 1
    _join_grace_timers()  # the server took the mail; the timer thread then marks it sent
    assert messages()[0].status == OutboxStatus.SENT
    resp.close()  # closing late sends nothing twice
    time.sleep(0.2)
    assert len(mailbox.to("view.commit@example.com")) == 1


def test_after_response_nothing_uncommitted_is_sent(after_response, mail_routes, client, mailbox):
    for path in ("/test-mail/no-commit", "/test-mail/crash"):
        client.get(path).close()
    time.sleep(0.2)
    assert mailbox.to("view.nocommit@example.com") == [] and mailbox.to("view.crash@example.com") == []
    assert messages() == []


def test_send_after_response_is_the_default_outside_tests(app_config):
    cfg = {k: v for k, v in app_config.items() if k != "TESTING"}
    prod_like = create_app(cfg)
    assert prod_like.config["OUTBOX_SEND_AFTER_RESPONSE"] is True
    with prod_like.app_context():
        db.engine.dispose()


# --- sent mail keeps personal data only as long as needed -------------------------------------------------------------


def _sent(to: str, *, template: str = "approved", user_id: int | None = None, days_ago: float = 0) -> int:
    msg_id = queue(to)
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(
                status=OutboxStatus.SENT,
                attempts=1,
                template=template,
                user_id=user_id,
                sent_at=utcnow() - timedelta(days=days_ago),
            )
        )
    return msg_id


def _is_erased(msg: OutboxMessage) -> bool:
    return (msg.recipient, msg.subject, msg.body_text, msg.body_html, msg.headers) == (
        "erased",
        "(erased)",
        "",
        "",
        None,
    )


def test_goodbye_to_an_erased_account_keeps_no_address_once_sent(app, advocate, mailbox):
    """The goodbye after deletion is the one mail to the old address; after it is sent, its row must
    not keep that address and body."""

    client = app.test_client()
    assert login(client, advocate.email).status_code == 302
    resp = post_form(client, "/me/delete", {"password": "correct-horse-battery-9", "confirm": "y"})
    assert resp.status_code == 302
    goodbye = mailbox.last(advocate.email, subject="deleted")
    assert goodbye.to == advocate.email
    rows = messages()
    assert rows and all(advocate.email not in (m.recipient + m.body_text + m.body_html) for m in rows)
    assert all("Ada" not in (m.subject + m.body_text + m.body_html) for m in rows)
    [sent] = [m for m in rows if m.template == "account_deleted"]
    assert sent.status == OutboxStatus.SENT and _is_erased(sent)


def test_sent_mail_of_a_deleted_user_is_erased_when_sent(app, make_user, mailbox):
    gone = make_user(status=Status.DELETED)
    msg_id = queue("still.queued@example.com", user_id=gone.id)
    assert outbox.send_due(ids=[msg_id]) == (1, 0)
    assert mailbox.last("still.queued@example.com")
    assert _is_erased(reload(OutboxMessage, msg_id))
    live = make_user()
    kept = queue("kept@example.com", user_id=live.id)
    assert outbox.send_due(ids=[kept]) == (1, 0)
    assert reload(OutboxMessage, kept).recipient == "kept@example.com"


def test_outbox_send_erases_sent_mail_after_the_retention(app, runner, make_user):
    assert app.config["OUTBOX_RETENTION_DAYS"] == 30
    old = _sent("old@example.com", days_ago=31)
    recent = _sent("recent@example.com", days_ago=29)
    gone = make_user(status=Status.DELETED)
    of_deleted = _sent("gone@example.com", user_id=gone.id)
    queued_old = queue("waiting@example.com")
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == queued_old)
            .values(created_at=utcnow() - timedelta(days=60), next_attempt_at=utcnow() + timedelta(hours=1))
        )
    out = runner.invoke(args=["outbox", "send"]).output
    assert "Sent 0, failed 0" in out and "2 sent message(s) erased" in out
    assert _is_erased(reload(OutboxMessage, old)) and _is_erased(reload(OutboxMessage, of_deleted))
    assert reload(OutboxMessage, recent).recipient == "recent@example.com"
    assert reload(OutboxMessage, queued_old).recipient == "waiting@example.com"  # not sent yet: kept
    assert reload(OutboxMessage, old).sent_at is not None  # the row stays, for counts
    assert "erased" not in runner.invoke(args=["outbox", "send"]).output  # nothing left to erase
    app.config["OUTBOX_RETENTION_DAYS"] = 7
    assert "1 sent message(s) erased" in runner.invoke(args=["outbox", "send"]).output
    assert _is_erased(reload(OutboxMessage, recent))
