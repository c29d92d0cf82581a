"""Leaderboard: periods at their boundaries, top 50 plus the viewer's rank, who is left out, ties,
and spending that does not lower anyone's standing."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import update

from portal.extensions import db
from portal.models import AdvocateProfile, EntryKind, Role, Status, User
from portal.services import leaderboard, points, rewards
from tests.support import complete_profile_form, give, login, make_reward, post_form, reload

UTC = UTC


def at(*args):
    return datetime(*args, tzinfo=UTC)


def give_at(when, user_id, amount, **kw):
    with time_machine.travel(when, tick=False):
        return give(user_id, amount, **kw)


def names(period, now=None, viewer_id=None):
    rows, _ = leaderboard.ranking(db.session, period, viewer_id=viewer_id, now=now)
    return [r.name for r in rows]


def table_names(html):
    return [re.sub(r"<[^>]+>", "", n) for n in re.findall(r'<td data-label="Advocate">(.*?)</td>', html)]


# --- periods -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now,period,start",
    [
        (at(2026, 3, 31, 23, 59, 59, 999999), "quarter", at(2026, 1, 1)),
        (at(2026, 4, 1), "quarter", at(2026, 4, 1)),
        (at(2026, 6, 30, 12), "quarter", at(2026, 4, 1)),
        (at(2026, 9, 30, 23, 59), "quarter", at(2026, 7, 1)),
        (at(2026, 12, 31, 23, 59), "quarter", at(2026, 10, 1)),
        (at(2026, 2, 28, 23, 59), "month", at(2026, 2, 1)),
        (at(2026, 3, 1), "month", at(2026, 3, 1)),
        (at(2026, 3, 1), "all", None),
    ],
)
def test_period_start(app, now, period, start):
    assert leaderboard.period_start(period, now) == start


def test_last_second_of_march_counts_for_q1_not_q2(app, make_user):
    early = make_user(name="Early Bird")
    late = make_user(name="Last Second")
    april = make_user(name="April Fool")
    give_at(at(2026, 1, 1, 0, 0, 0), early.id, 10)
    give_at(at(2025, 12, 31, 23, 59, 59), early.id, 1000)  # Q4 of last year: never in 2026's quarters
    give_at(at(2026, 3, 31, 23, 59, 59), late.id, 300)
    give_at(at(2026, 4, 1, 0, 0, 0), april.id, 200)

    end_of_q1 = at(2026, 3, 31, 23, 59, 59, 999999)
    assert names("quarter", end_of_q1) == ["Last Second", "Early Bird"]
    assert names("quarter", at(2026, 4, 1, 0, 0, 0)) == ["April Fool"]
    assert names("quarter", at(2026, 6, 30, 23, 59, 59)) == ["April Fool"]
    assert names("all", at(2026, 4, 2)) == ["Early Bird", "Last Second", "April Fool"]
    rows, _ = leaderboard.ranking(db.session, "quarter", now=end_of_q1)
    assert [(r.rank, r.points) for r in rows] == [(1, 300), (2, 10)]


def test_month_rollover(app, make_user):
    jan = make_user(name="January")
    feb = make_user(name="February")
    give_at(at(2026, 1, 31, 23, 59, 59), jan.id, 100)
    give_at(at(2026, 2, 1, 0, 0, 0), feb.id, 50)
    assert names("month", at(2026, 1, 31, 23, 59, 59, 999999)) == ["January"]
    assert names("month", at(2026, 2, 1, 0, 0, 0)) == ["February"]
    assert names("month", at(2026, 2, 28, 23, 59, 59)) == ["February"]
    assert names("month", at(2026, 3, 1)) == []
    assert names("quarter", at(2026, 3, 1)) == ["January", "February"]
    assert names("all", at(2026, 3, 1)) == ["January", "February"]


def test_leaderboard_page_periods_at_the_boundary(app, make_user):
    late = make_user(name="Last Second")
    april = make_user(name="April Fool")
    viewer = make_user(name="Vera Viewer")

    def page(when, period):
        with time_machine.travel(when, tick=False):
            client = app.test_client()
            login(client, viewer.email)
            return table_names(client.get(f"/leaderboard?period={period}").get_data(as_text=True))

    give_at(at(2026, 3, 31, 23, 59, 59), late.id, 300)
    assert page(at(2026, 3, 31, 23, 59, 59, 500000), "quarter") == ["Last Second"]
    assert page(at(2026, 3, 31, 23, 59, 59, 500000), "month") == ["Last Second"]
    give_at(at(2026, 4, 1, 0, 0, 0), april.id, 200)
    assert page(at(2026, 4, 1, 0, 0, 30), "quarter") == ["April Fool"]
    assert page(at(2026, 4, 1, 0, 0, 30), "month") == ["April Fool"]
    assert page(at(2026, 4, 1, 0, 0, 30), "all") == ["Last Second", "April Fool"]
    assert page(at(2026, 4, 1, 0, 0, 30), "decade") == ["Last Second", "April Fool"]  # unknown: all time


# --- top 50 and the viewer ----------------------------------------------------------------------------------------


def test_top_fifty_plus_the_viewers_own_rank(app, make_user, advocate, advocate_client):
    for i in range(55):
        u = make_user(name=f"Leader {i:02d}")
        give(u.id, 1000 - i)
    give(advocate.id, 5)
    rows, mine = leaderboard.ranking(db.session, "all", viewer_id=advocate.id)
    assert len(rows) == 50 and [r.rank for r in rows] == list(range(1, 51))
    assert rows[0].name == "Leader 00" and rows[-1].name == "Leader 49"
    assert advocate.id not in [r.user_id for r in rows]
    assert (mine.rank, mine.points, mine.user_id) == (56, 5, advocate.id)

    html = advocate_client.get("/leaderboard").get_data(as_text=True)
    assert "You are <strong>#56</strong> with 5 points" in html
    assert "months and quarters are counted in UTC" in html  # the page says which calendar it counts in
    shown = table_names(html)
    assert len(shown) == 50 and "Ada Advocate" not in shown and "Leader 50" not in shown
    assert 'class="me"' not in html


def test_viewer_inside_the_top_is_highlighted(app, make_user, advocate, advocate_client):
    for i in range(3):
        give(make_user(name=f"Other {i}").id, 100 * (i + 1))
    give(advocate.id, 250)
    rows, mine = leaderboard.ranking(db.session, "all", viewer_id=advocate.id)
    assert mine.rank == 2 and [r.name for r in rows] == ["Other 2", "Ada Advocate", "Other 1", "Other 0"]
    html = advocate_client.get("/leaderboard").get_data(as_text=True)
    assert "You are <strong>#2</strong>" in html
    assert re.search(r'<tr class="me">\s*<td data-label="Rank">2</td><td data-label="Advocate">Ada Advocate', html)


def test_viewer_without_points_sees_no_rank(app, make_user, advocate_client, staff_client):
    give(make_user(name="Someone").id, 10)
    for c in (advocate_client, staff_client):
        html = c.get("/leaderboard").get_data(as_text=True)
        assert "You are" not in html and table_names(html) == ["Someone"]
    assert app.test_client().get("/leaderboard").status_code == 302  # signed-out: to the login page


# --- who is left out ----------------------------------------------------------------------------------------------


def test_suspended_staff_and_opted_out_are_left_out(app, make_user, advocate_client, admin_client):
    shown = make_user(name="Shown Advocate")
    hidden = make_user(name="Hidden Advocate")
    suspended = make_user(name="Suspended Advocate")
    staff = make_user(Role.STAFF, name="Staff Member")
    admin = make_user(Role.ADMIN, name="Admin Person")
    pending = make_user(status=Status.PENDING, name="Pending Person")
    for u, amount in ((shown, 10), (hidden, 900), (suspended, 800), (staff, 700), (admin, 600), (pending, 500)):
        give(u.id, amount)
    # opting out through the profile page
    client = app.test_client()
    login(client, hidden.email)
    client.get("/dashboard")  # creates the profile
    html = client.get("/me/profile").get_data(as_text=True)
    assert 'name="show_on_leaderboard"' in html

    assert (
        post_form(
            client, "/me/profile", complete_profile_form(name="Hidden Advocate", show_on_leaderboard="")
        ).status_code
        == 302
    )
    assert reload(AdvocateProfile, hidden.id).show_on_leaderboard is False
    db.session.execute(update(User).where(User.id == suspended.id).values(status=Status.SUSPENDED))
    db.session.commit()

    for period in ("all", "quarter", "month"):
        assert names(period) == ["Shown Advocate"], period
        rows, _ = leaderboard.ranking(db.session, period)
        assert rows[0].rank == 1  # the left-out do not take ranks
    rows, mine = leaderboard.ranking(db.session, "all", viewer_id=hidden.id)
    assert mine is None
    html = advocate_client.get("/leaderboard").get_data(as_text=True)
    assert table_names(html) == ["Shown Advocate"]
    for name in ("Hidden", "Suspended", "Staff Member", "Admin Person", "Pending Person"):
        assert name not in html
    # opting back in brings them back
    db.session.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == hidden.id).values(show_on_leaderboard=True)
    )
    db.session.commit()
    assert names("all") == ["Hidden Advocate", "Shown Advocate"]


# --- ties and spending ---------------------------------------------------------------------------------------------


def test_ties_go_to_whoever_reached_the_score_first(app, make_user):
    slow = make_user(name="Slow")  # created first: a lower id must not win the tie
    fast = make_user(name="Fast")
    base = at(2026, 5, 4, 9, 0, 0)
    give_at(base, slow.id, 60)
    give_at(base + timedelta(minutes=1), fast.id, 100)  # 100 at 09:01
    give_at(base + timedelta(minutes=2), slow.id, 40)  # 100 at 09:02
    assert names("all", base + timedelta(hours=1)) == ["Fast", "Slow"]
    assert names("month", base + timedelta(hours=1)) == ["Fast", "Slow"]
    rows, _ = leaderboard.ranking(db.session, "all", now=base + timedelta(hours=1))
    assert [(r.rank, r.points) for r in rows] == [(1, 100), (2, 100)]
    # the next point decides it
    give_at(base + timedelta(minutes=3), slow.id, 1)
    assert names("all", base + timedelta(hours=1)) == ["Slow", "Fast"]


def test_a_reversed_award_does_not_move_the_time_the_score_was_reached(app, make_user, admin):
    """Anna has 100 from 09:00; +50 at 09:05 is reversed at 09:10. Ben reaches 100 at 09:01. Anna reached
    the final score first; the time of her latest entry must not decide the tie."""
    anna = make_user(name="Anna")
    ben = make_user(name="Ben")
    base = at(2026, 5, 4, 9, 0, 0)
    give_at(base, anna.id, 100)
    give_at(base + timedelta(minutes=1), ben.id, 100)
    bonus, _ = give_at(base + timedelta(minutes=5), anna.id, 50)
    with time_machine.travel(base + timedelta(minutes=10), tick=False):
        points.reverse(db.session, bonus, reason="given twice", actor_id=admin.id)
        db.session.commit()
    later = base + timedelta(hours=1)
    for period in ("all", "quarter", "month"):
        rows, _ = leaderboard.ranking(db.session, period, now=later)
        assert [(r.name, r.points, r.rank) for r in rows] == [("Anna", 100, 1), ("Ben", 100, 2)], period


def test_reached_at_is_when_the_running_total_first_reached_the_final_score(app, make_user):
    """Cleo: 60 at 09:00, 60 more at 09:02 (120), -20 at 09:04 (100): she first had 100 at 09:02.
    Dan: 100 at 09:03, so Cleo is ahead of him; Eve, at 100 since 09:01, is ahead of both."""
    cleo = make_user(name="Cleo")
    dan = make_user(name="Dan")
    eve = make_user(name="Eve")
    base = at(2026, 5, 4, 9, 0, 0)
    give_at(base, cleo.id, 60)
    give_at(base + timedelta(minutes=2), cleo.id, 60)
    give_at(base + timedelta(minutes=3), dan.id, 100)
    give_at(base + timedelta(minutes=4), cleo.id, -20, kind=EntryKind.ADJUSTED)
    give_at(base + timedelta(minutes=1), eve.id, 100)
    assert names("all", base + timedelta(hours=1)) == ["Eve", "Cleo", "Dan"]


def test_redemptions_do_not_lower_leaderboard_points(app, make_user):
    spender = make_user(name="Spender")
    saver = make_user(name="Saver")
    give(spender.id, 1000)
    give(saver.id, 600)
    rid = make_reward(cost=900, stock=5)
    order, _ = rewards.redeem(db.session, reload(User, spender.id), rid, "big-spend")
    db.session.commit()
    for period in ("all", "quarter", "month"):
        rows, _ = leaderboard.ranking(db.session, period)
        assert [(r.name, r.points) for r in rows] == [("Spender", 1000), ("Saver", 600)], period
    # and a refund does not raise them either
    rewards.cancel(db.session, order.id, reload(User, spender.id))
    db.session.commit()
    rows, _ = leaderboard.ranking(db.session, "all")
    assert [(r.name, r.points) for r in rows] == [("Spender", 1000), ("Saver", 600)]
