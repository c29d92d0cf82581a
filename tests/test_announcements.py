"""`flask opportunities announce` (cron): "Tell me about new opportunities that match me". Each
opportunity first opened recently is emailed to every advocate who wants announcements, fits it and
could say "I'm in" now; once per advocate and opportunity, however often it runs; one-click
unsubscribe; the digest does not repeat what was announced. Mail is read from the test SMTP server."""

from datetime import UTC, datetime, timedelta

import time_machine

from portal.cli.opportunities import opportunities_cli
from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Digest,
    DigestDelivery,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Status,
    User,
)
from tests.support import make_advocate, make_opp, post_form, reload, text_of

T0 = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)


def announce(runner, *args) -> str:
    result = runner.invoke(opportunities_cli, ["announce", *args])
    assert result.exit_code == 0, result.output
    return result.output


def announced() -> set[tuple[int, int]]:
    db.session.rollback()
    return {(d.user_id, int(d.period_key)) for d in db.session.query(DigestDelivery).filter_by(period="announce")}


def test_a_newly_opened_opportunity_is_announced_once_to_those_who_want_it(
    app, runner, mailbox, make_user, admin_client
):
    wants = make_advocate(make_user, "wants@example.com", name="Wanda Wants", types=("speaking",))
    make_advocate(make_user, "off@example.com", types=("speaking",), notify_opportunities=False)
    make_advocate(make_user, "other@example.com", types=("review",))
    make_advocate(make_user, "limit@example.com", types=("speaking",), max_asks_per_month=0)
    gone = make_advocate(make_user, "gone@example.com", types=("speaking",))
    db.session.query(User).filter_by(id=gone).update({"status": Status.SUSPENDED})
    db.session.commit()
    oid = make_opp("speaking", title="<script>x</script> Summit & AT&T", status=OpportunityStatus.DRAFT)

    assert "0 announcement(s) queued" in announce(runner)  # a draft is not announced
    post_form(
        admin_client, f"/admin/opportunities/{oid}/status", {"status": "open"}, page=f"/admin/opportunities/{oid}"
    )
    assert mailbox.messages == []  # not in the admin's request: the cron does it
    output = announce(runner)
    assert "1 announcement(s) queued" in output
    mail = mailbox.last("wants@example.com")
    assert mail.subject == "New opportunity for you: <script>x</script> Summit & AT&T"
    assert "Hello Wanda Wants" in mail.text and "A new opportunity matches you:" in mail.text
    assert "- <script>x</script> Summit & AT&T (Speaking): Open to every advocate" not in mail.text  # escaped
    assert "AT&T" in mail.text and f"http://localhost/opportunities/{oid}" in mail.text
    assert "<script>x</script>" not in mail.html and "&lt;script&gt;x&lt;/script&gt; Summit &amp; AT&amp;T" in mail.html
    link = mail.link("/me/unsubscribe/")
    assert mail.message["List-Unsubscribe"] == f"<{link}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in mail.html
    for nobody in ("off@example.com", "other@example.com", "limit@example.com", "gone@example.com"):
        assert mailbox.to(nobody) == []
    assert announced() == {(wants, oid)}

    # again, and after closing and reopening: nobody is told twice
    assert "0 announcement(s) queued" in announce(runner)
    for status in ("closed", "open"):
        post_form(
            admin_client, f"/admin/opportunities/{oid}/status", {"status": status}, page=f"/admin/opportunities/{oid}"
        )
    assert "0 announcement(s) queued" in announce(runner)
    assert len(mailbox.to("wants@example.com")) == 1


def test_only_opportunities_opened_recently_are_announced(app, runner, mailbox, make_user):
    make_advocate(make_user, "recent@example.com", types=("speaking",))
    with time_machine.travel(T0):
        make_opp("speaking", title="Opened yesterday", opened_at=T0 - timedelta(days=1))
        make_opp("speaking", title="Opened 8 days ago", opened_at=T0 - timedelta(days=8))
        make_opp("speaking", title="Closed again", status=OpportunityStatus.CLOSED, opened_at=T0 - timedelta(hours=1))
        make_opp(
            "speaking",
            title="Deadline passed",
            opened_at=T0 - timedelta(hours=1),
            deadline=(T0 - timedelta(days=1)).date(),
        )
        make_opp("speaking", title="Full", capacity=1, seats_taken=1, opened_at=T0 - timedelta(hours=1))
        announce(runner)
        mail = mailbox.last("recent@example.com")
        assert mail.subject == "New opportunity for you: Opened yesterday"
        announce(runner, "--days", "10")  # a cron that was down catches up
        second = mailbox.wait_for("recent@example.com", 2)[-1]
    assert second.subject == "New opportunity for you: Opened 8 days ago"
    for absent in ("Closed again", "Deadline passed", "Full", "Opened yesterday"):
        assert absent not in second.text


def test_several_new_ones_make_one_email_and_later_ones_their_own(app, runner, mailbox, make_user):
    adv = make_advocate(make_user, "many@example.com", industry="Healthcare", types=("speaking", "review"))
    with time_machine.travel(T0):
        a = make_opp(
            "speaking", title="Healthcare keynote", industries=("Healthcare",), opened_at=T0 - timedelta(hours=2)
        )
        b = make_opp("review", title="Review us on G2", opened_at=T0 - timedelta(hours=1))
        make_opp("speaking", title="Insurance only", industries=("Insurance",), opened_at=T0 - timedelta(hours=1))
        announce(runner)
        [mail] = mailbox.wait_for("many@example.com")
        assert mail.subject == "2 new opportunities that match you"
        assert "- Healthcare keynote (Speaking): Matches your industry" in mail.text
        assert "- Review us on G2 (Peer review): Open to every advocate" in mail.text
        assert "Insurance only" not in mail.text
        assert mail.text.index("Healthcare keynote") < mail.text.index("Review us on G2")
    with time_machine.travel(T0 + timedelta(hours=5)):
        c = make_opp("speaking", title="Webinar panel", opened_at=T0 + timedelta(hours=4))
        announce(runner)
    later = mailbox.wait_for("many@example.com", 2)[-1]
    assert later.subject == "New opportunity for you: Webinar panel"
    assert "Healthcare keynote" not in later.text
    assert announced() == {(adv, a), (adv, b), (adv, c)}


def test_batches_reach_everyone(app, runner, mailbox, make_user):
    people = [make_advocate(make_user, f"batch{i}@example.com", types=("speaking",)) for i in range(5)]
    oid = make_opp("speaking", title="For all five")
    output = announce(runner, "--batch", "2")
    assert "5 announcement(s) queued" in output
    for i in range(5):
        assert mailbox.last(f"batch{i}@example.com").subject == "New opportunity for you: For all five"
    assert announced() == {(uid, oid) for uid in people}


def test_the_unsubscribe_link_turns_announcements_off(app, runner, mailbox, make_user, client):
    adv = make_advocate(make_user, "unsub@example.com", types=("speaking",), digest="weekly")
    with time_machine.travel(T0):
        make_opp("speaking", title="First news", opened_at=T0 - timedelta(hours=1))
        announce(runner)
        link = mailbox.last("unsub@example.com").link("/me/unsubscribe/")
        path = link.split("http://localhost", 1)[1]
        assert client.get(path).status_code == 200
        done = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "You are unsubscribed" in text_of(done)
    profile = reload(AdvocateProfile, adv)
    assert profile.notify_opportunities is False and profile.digest == Digest.WEEKLY  # only this topic
    with time_machine.travel(T0 + timedelta(hours=3)):
        make_opp("speaking", title="Second news", opened_at=T0 + timedelta(hours=2))
        assert "0 announcement(s) queued" in announce(runner)
    assert len(mailbox.to("unsub@example.com")) == 1


def test_the_digest_does_not_repeat_what_was_announced(app, runner, mailbox, make_user):
    adv = make_advocate(make_user, "both@example.com", types=("speaking",), digest="weekly")
    with time_machine.travel(T0 - timedelta(days=3)):
        make_opp("speaking", title="Announced on Friday", opened_at=T0 - timedelta(days=3, hours=1))
        announce(runner)
    assert mailbox.last("both@example.com").subject == "New opportunity for you: Announced on Friday"
    make_opp("speaking", title="Opened on Sunday", opened_at=T0 - timedelta(days=1))
    db.session.query(AdvocateProfile).filter_by(user_id=adv).update({"notify_opportunities": False})
    db.session.commit()
    with time_machine.travel(T0):
        result = runner.invoke(args=["digest", "send", "--period", "weekly"])
        assert result.exit_code == 0, result.output
    digest = mailbox.wait_for("both@example.com", 2)[-1]
    assert digest.subject == "1 new opportunity for you"
    assert "Opened on Sunday" in digest.text and "Announced on Friday" not in digest.text


def test_advocates_already_taking_part_are_not_told(app, runner, mailbox, make_user):
    adv = make_advocate(make_user, "inside@example.com", types=("speaking",))
    oid = make_opp("speaking", title="Already in it")
    db.session.add(Participation(opportunity_id=oid, user_id=adv, status=ParticipationStatus.REQUESTED))
    db.session.commit()
    assert "0 announcement(s) queued" in announce(runner)
    assert mailbox.to("inside@example.com") == []


def test_the_command_is_registered_with_flask(app, runner):
    """Cron calls `flask opportunities announce`: the group is wired into the app's CLI."""
    result = runner.invoke(args=["opportunities", "announce", "--help"])
    assert result.exit_code == 0, result.output
    assert "--days" in result.output
