"""`flask digest send --period weekly|monthly`: each advocate who chose the period gets the new
opportunities they are eligible for since their last digest; nobody gets an empty one; a second run
for the same period sends nothing; one-click unsubscribe (link and List-Unsubscribe header)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

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
from tests.support import make_advocate, make_opp, reload

T0 = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)  # a Monday, ISO week 2031-W10


def run(runner, period):
    result = runner.invoke(args=["digest", "send", "--period", period])
    assert result.exit_code == 0, result.output
    return result.output


def deliveries():
    db.session.rollback()
    return [
        (d.user_id, d.period, d.period_key, d.opportunity_count)
        for d in db.session.query(DigestDelivery).order_by(DigestDelivery.id)
    ]


@pytest.fixture
def people(make_user):
    return {
        "weekly": make_advocate(
            make_user,
            "weekly@example.com",
            name="Wendy Weekly",
            industry="Healthcare",
            types=("speaking", "review"),
            digest="weekly",
        ),
        "weekly, nothing fits": make_advocate(make_user, "nofit@example.com", types=("beta",), digest="weekly"),
        "monthly": make_advocate(
            make_user,
            "monthly@example.com",
            name="Mona Monthly",
            industry="Healthcare",
            types=("speaking", "review"),
            digest="monthly",
        ),
        "off": make_advocate(make_user, "off@example.com", types=("speaking", "review"), digest="off"),
    }


def test_weekly_digest_content(app, runner, mailbox, people):
    with time_machine.travel(T0):
        fresh = T0 - timedelta(days=1)
        talk = make_opp("speaking", title="Healthcare keynote", industries=("Healthcare",), opened_at=fresh)
        review = make_opp("review", title="Review us on G2", opened_at=fresh)
        make_opp("speaking", title="Insurance only", industries=("Insurance",), opened_at=fresh)
        make_opp("webinar", title="Webinar nobody opted in to", opened_at=fresh)
        make_opp("speaking", title="Still a draft", status=OpportunityStatus.DRAFT)
        make_opp("speaking", title="Closed again", status=OpportunityStatus.CLOSED, opened_at=fresh)
        make_opp("speaking", title="Opened long ago", opened_at=T0 - timedelta(days=8))
        make_opp("speaking", title="Full already", capacity=1, seats_taken=1, opened_at=fresh)
        answered = make_opp("speaking", title="Already requested", opened_at=fresh)
        db.session.add(
            Participation(opportunity_id=answered, user_id=people["weekly"], status=ParticipationStatus.REQUESTED)
        )
        db.session.commit()

        output = run(runner, "weekly")
    assert "1 digest(s) queued, 1 advocate(s) skipped" in output
    [mail] = mailbox.wait_for("weekly@example.com")
    assert mail.subject == "2 new opportunities for you"
    text = mail.text
    assert "Hello Wendy Weekly" in text
    assert "- Healthcare keynote (Speaking): Matches your industry" in text
    assert f"http://localhost/opportunities/{talk}" in text
    assert "- Review us on G2 (Peer review): Open to every advocate" in text
    assert f"http://localhost/opportunities/{review}" in text
    assert text.index("Healthcare keynote") < text.index("Review us on G2")  # best fit first
    for absent in (
        "Insurance only",
        "Webinar nobody",
        "Still a draft",
        "Closed again",
        "Opened long ago",
        "Full already",
        "Already requested",
    ):
        assert absent not in text and absent not in mail.html
    assert "weekly digest" in text
    for nobody in ("nofit@example.com", "monthly@example.com", "off@example.com"):
        assert mailbox.to(nobody) == []
    assert deliveries() == [(people["weekly"], "weekly", "2031-W10", 2)]


def test_a_second_run_sends_nothing_and_next_week_only_what_is_new(app, runner, mailbox, people):
    with time_machine.travel(T0):
        make_opp("speaking", title="First batch", opened_at=T0 - timedelta(hours=5))
        run(runner, "weekly")
        assert len(mailbox.wait_for("weekly@example.com")) == 1
    with time_machine.travel(T0 + timedelta(days=2)):  # same week
        make_opp("speaking", title="Midweek", opened_at=T0 + timedelta(days=2))
        output = run(runner, "weekly")
        assert "0 digest(s) queued" in output
    assert len(mailbox.to("weekly@example.com")) == 1
    with time_machine.travel(T0 + timedelta(days=7)):
        make_opp("review", title="Next week", opened_at=T0 + timedelta(days=6))
        output = run(runner, "weekly")
    assert "1 digest(s) queued" in output
    second = mailbox.wait_for("weekly@example.com", 2)[-1]
    assert second.subject == "2 new opportunities for you"
    assert "Midweek" in second.text and "Next week" in second.text and "First batch" not in second.text
    assert [d[2] for d in deliveries()] == ["2031-W10", "2031-W11"]


def test_advocates_with_nothing_new_get_nothing(app, runner, mailbox, people):
    with time_machine.travel(T0):
        make_opp("speaking", title="Only one", opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    mailbox.wait_for("weekly@example.com")
    mailbox.clear()
    with time_machine.travel(T0 + timedelta(days=7)):
        output = run(runner, "weekly")  # a new week, but nothing opened since the last digest
    assert "0 digest(s) queued, 2 advocate(s) skipped" in output
    assert mailbox.to("weekly@example.com") == []
    assert len(deliveries()) == 1


def test_monthly_digest_goes_to_monthly_advocates_only(app, runner, mailbox, people):
    with time_machine.travel(T0):
        make_opp("speaking", title="Monthly pick", industries=("Healthcare",), opened_at=T0 - timedelta(days=20))
        output = run(runner, "monthly")
        assert "1 digest(s) queued" in output
        mail = mailbox.last("monthly@example.com")
        assert mail.subject == "1 new opportunity for you"
        assert "Monthly pick (Speaking): Matches your industry" in mail.text and "monthly digest" in mail.text
        assert mailbox.to("weekly@example.com") == []
        assert "0 digest(s) queued" in run(runner, "monthly")
    assert deliveries() == [(people["monthly"], "monthly", "2031-03", 1)]


def test_suspended_advocates_get_no_digest(app, runner, mailbox, people):
    db.session.query(User).filter_by(id=people["weekly"]).update({"status": Status.SUSPENDED})
    db.session.commit()
    with time_machine.travel(T0):
        make_opp("speaking", title="For the active only", opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    assert mailbox.to("weekly@example.com") == [] and deliveries() == []


def test_titles_are_escaped_in_the_html_part(app, runner, mailbox, people):
    with time_machine.travel(T0):
        make_opp("speaking", title="<script>alert(1)</script> & AT&T", opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    mail = mailbox.last("weekly@example.com")
    assert "<script>alert(1)</script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; AT&amp;T" in mail.html
    assert "AT&T" in mail.text


def test_unsubscribe_link_and_header(app, runner, mailbox, people, client):
    with time_machine.travel(T0):
        make_opp("speaking", title="Before unsubscribing", opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    mail = mailbox.last("weekly@example.com")
    link = mail.link("/me/unsubscribe/")
    assert mail.message["List-Unsubscribe"] == f"<{link}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in mail.html
    path = link.split("http://localhost", 1)[1]

    # Opening the link asks first (mail scanners follow links); the POST unsubscribes, no login needed.
    with time_machine.travel(T0 + timedelta(hours=2)):  # the token was signed at T0
        assert client.post(path[:-3] + "xyz").status_code == 400  # a tampered token changes nothing
        page = client.get(path)
        assert page.status_code == 200 and b"Stop receiving the opportunity digest?" in page.data
        assert reload(AdvocateProfile, people["weekly"]).digest == Digest.WEEKLY
        done = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and b"You are unsubscribed" in done.data
        assert reload(AdvocateProfile, people["weekly"]).digest == Digest.OFF

    with time_machine.travel(T0 + timedelta(days=7)):
        make_opp("speaking", title="After unsubscribing", opened_at=T0 + timedelta(days=6))
        run(runner, "weekly")
    assert len(mailbox.to("weekly@example.com")) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["digest", "send", "--period", "yearly"], "Invalid value for '--period'"),
        (["digest", "send", "--period", ""], "Invalid value for '--period'"),
        (["digest", "send"], "Missing option '--period'"),
    ],
)
def test_an_invalid_period_is_rejected(app, runner, mailbox, people, args, message):
    make_opp("speaking", title="Anything")
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and message in result.output
    assert deliveries() == [] and mailbox.messages == []


def test_after_a_gap_of_weeks_the_digest_covers_the_whole_gap_since_the_last_one(app, runner, mailbox, people):
    with time_machine.travel(T0):
        make_opp("speaking", title="Before the first digest", opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    assert "Before the first digest" in mailbox.last("weekly@example.com").text
    make_opp("speaking", title="Right after it", opened_at=T0 + timedelta(hours=1))
    make_opp("review", title="Two weeks in", opened_at=T0 + timedelta(days=14))
    # three weeks without a digest (the cron was down): everything since the last one, not just 7 days
    with time_machine.travel(T0 + timedelta(days=21)):
        make_opp("speaking", title="Yesterday", opened_at=T0 + timedelta(days=20))
        assert "1 digest(s) queued" in run(runner, "weekly")
    second = mailbox.wait_for("weekly@example.com", 2)[-1]
    assert second.subject == "3 new opportunities for you"
    for title in ("Right after it", "Two weeks in", "Yesterday"):
        assert title in second.text
    assert "Before the first digest" not in second.text
    assert [d[2] for d in deliveries()] == ["2031-W10", "2031-W13"]


def test_an_advocate_at_their_own_limit_gets_no_digest(app, runner, mailbox, people):
    asked = make_opp("speaking", title="Asked already", opened_at=T0 - timedelta(days=30))
    db.session.add(
        Participation(
            opportunity_id=asked,
            user_id=people["weekly"],
            status=ParticipationStatus.REQUESTED,
            requested_at=T0 - timedelta(days=1),
        )
    )
    db.session.query(AdvocateProfile).filter_by(user_id=people["weekly"]).update({"max_asks_per_month": 1})
    db.session.commit()
    with time_machine.travel(T0):
        make_opp("speaking", title="Would be refused", opened_at=T0 - timedelta(days=1))
        output = run(runner, "weekly")
    assert "0 digest(s) queued" in output
    assert mailbox.to("weekly@example.com") == []


def test_the_digest_leaves_out_what_a_program_rule_would_refuse(app, runner, mailbox, people):
    from datetime import date

    with time_machine.travel(T0):
        for i in range(4):  # four talks in late April: nothing more within 90 days of them
            oid = make_opp(
                "speaking", title=f"Talk {i}", event_date=date(2031, 4, 20 + i), opened_at=T0 - timedelta(days=60)
            )
            db.session.add(
                Participation(
                    opportunity_id=oid,
                    user_id=people["weekly"],
                    status=ParticipationStatus.APPROVED,
                    holds_seat=True,
                    requested_at=T0 - timedelta(days=40),
                    engaged_at=T0 - timedelta(days=40),
                )
            )
        db.session.commit()
        make_opp("speaking", title="Also in April", event_date=date(2031, 4, 28), opened_at=T0 - timedelta(days=1))
        make_opp("review", title="A review in September", event_date=date(2031, 9, 1), opened_at=T0 - timedelta(days=1))
        run(runner, "weekly")
    mail = mailbox.last("weekly@example.com")
    assert mail.subject == "1 new opportunity for you"
    assert "A review in September" in mail.text and "Also in April" not in mail.text
