"""Advocate self-service, availability: asks per month/quarter, a pause, the time zone, blackout periods
(end not before start, overlapping allowed, past ones collapse into history) and the dashboard status."""

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.forms.profile import LimitsForm
from portal.models import AdvocateProfile, Blackout, utcnow
from portal.services import profiles
from portal.services.errors import DomainError
from tests.support import ensure_login, login, post_form, reload, text

SCRIPT = '<script>alert("pwn")</script>'


def today():
    return utcnow().date()


def fmt(d: date) -> str:
    return d.strftime("%d %b %Y")


def set_limits(client, **data):
    data.setdefault("timezone", "UTC")
    return post_form(client, "/me/availability", {k: v for k, v in data.items() if v is not None})


def add_blackout(client, start, end, note=""):
    data = {
        "starts_on": start.isoformat() if isinstance(start, date) else start,
        "ends_on": end.isoformat() if isinstance(end, date) else end,
        "note": note,
    }
    return post_form(client, "/me/availability/blackouts", data, page="/me/availability")


def delete_blackout(client, blackout_id):
    return post_form(client, f"/me/availability/blackouts/{blackout_id}/delete", {}, page="/me/availability")


def limits(user_id):
    p = reload(AdvocateProfile, user_id)
    state = (p.max_asks_per_month, p.max_asks_per_quarter, p.paused_until, p.timezone) if p else None
    db.session.rollback()
    return state


def blackouts(user_id):
    db.session.rollback()
    rows = [
        (b.starts_on, b.ends_on, b.note)
        for b in db.session.scalars(
            select(Blackout).where(Blackout.user_id == user_id).order_by(Blackout.starts_on, Blackout.id)
        )
    ]
    db.session.rollback()
    return rows


def status_pill(page):
    m = re.search(r'<p class="status-pill status-(\w+)"[^>]*>([^<]*)</p>', page)
    assert m, "no availability status on the page"
    return m.group(1), m.group(2)


# --- limits, pause, time zone ---------------------------------------------------------------------------------


def test_limits_pause_and_time_zone_are_saved_and_shown(advocate_client, advocate):
    page = text(advocate_client.get("/me/availability"))
    assert status_pill(page) == ("available", "Available")
    assert '<option selected value="UTC">UTC</option>' in page and '<option value="Asia/Tokyo">' in page
    until = today() + timedelta(days=10)
    resp = set_limits(
        advocate_client,
        max_asks_per_month="2",
        max_asks_per_quarter="5",
        paused_until=until.isoformat(),
        timezone="Asia/Tokyo",
    )
    assert resp.status_code == 302
    assert limits(advocate.id) == (2, 5, until, "Asia/Tokyo")
    page = text(advocate_client.get("/me/availability"))
    assert "Your availability is saved." in page
    assert status_pill(page) == ("paused", f"Paused until {fmt(until)}")
    assert '<option selected value="Asia/Tokyo">' in page and 'value="2"' in page and 'value="5"' in page
    dash = text(advocate_client.get("/dashboard"))
    assert status_pill(dash) == ("paused", f"Paused until {fmt(until)}")
    assert re.search(r"Your limits:\s*2 per month,\s*5 per quarter\.", dash)
    # Empty fields mean "no limit of my own" and "not paused".
    assert (
        set_limits(
            advocate_client, max_asks_per_month="", max_asks_per_quarter="", paused_until="", timezone="Europe/Berlin"
        ).status_code
        == 302
    )
    assert limits(advocate.id) == (None, None, None, "Europe/Berlin")
    dash = text(advocate_client.get("/dashboard"))
    assert status_pill(dash) == ("available", "Available") and "Your limits" not in dash


def test_limits_at_the_edges(advocate_client, advocate):
    assert set_limits(advocate_client, max_asks_per_month="0", max_asks_per_quarter="0").status_code == 302
    assert limits(advocate.id)[:2] == (0, 0)
    assert set_limits(advocate_client, max_asks_per_month="50", max_asks_per_quarter="150").status_code == 302
    assert limits(advocate.id)[:2] == (50, 150)
    assert set_limits(advocate_client, max_asks_per_quarter="3").status_code == 302  # only one of them
    assert limits(advocate.id)[:2] == (None, 3)
    until = today() + timedelta(days=365 * 2)
    assert set_limits(advocate_client, paused_until=until.isoformat()).status_code == 302
    assert set_limits(advocate_client, paused_until=today().isoformat()).status_code == 302  # until today: ok
    assert limits(advocate.id)[2] == today()


INVALID_LIMITS = [
    ({"max_asks_per_month": "-1"}, "Number must be between 0 and 50"),
    ({"max_asks_per_month": "51"}, "Number must be between 0 and 50"),
    ({"max_asks_per_month": "abc"}, "Not a valid integer value"),
    ({"max_asks_per_month": "1.5"}, "Not a valid integer value"),
    ({"max_asks_per_month": "9" * 40}, "That number is too large."),
    ({"max_asks_per_month": "9" * 400}, "That number is too large."),  # was a 500 (float overflow in NumberRange)
    ({"max_asks_per_quarter": "-" + "9" * 400}, "That number is too large."),
    ({"max_asks_per_quarter": "151"}, "Number must be between 0 and 150"),
    ({"max_asks_per_month": "5", "max_asks_per_quarter": "4"}, "cannot be fewer than asks per month"),
    ({"paused_until": "yesterday"}, "A pause must last until today or a later date."),
    ({"paused_until": "2001-01-01"}, "A pause must last until today or a later date."),
    ({"paused_until": "far"}, "A pause can last at most two years."),
    ({"paused_until": "2025-02-30"}, "Not a valid date value"),
    ({"paused_until": "31/12/2099"}, "Not a valid date value"),
    ({"timezone": "Mars/Base"}, "Not a valid choice"),
    ({"timezone": ""}, "Not a valid choice"),
    ({"timezone": "utc"}, "Not a valid choice"),
    ({"timezone": "Europe/" + "x" * 300}, "Not a valid choice"),
    # In the tz database but not places: pseudo zones, POSIX rules, legacy aliases.
    ({"timezone": "localtime"}, "Not a valid choice"),
    ({"timezone": "Factory"}, "Not a valid choice"),
    ({"timezone": "EST5EDT"}, "Not a valid choice"),
    ({"timezone": "Etc/GMT+5"}, "Not a valid choice"),
    ({"timezone": "US/Eastern"}, "Not a valid choice"),
    ({"timezone": "posixrules"}, "Not a valid choice"),
]


@pytest.mark.parametrize("data,message", INVALID_LIMITS, ids=[str(i) for i in range(len(INVALID_LIMITS))])
def test_invalid_limits_are_refused_and_nothing_saved(advocate_client, advocate, data, message):
    assert (
        set_limits(
            advocate_client, max_asks_per_month="2", max_asks_per_quarter="6", timezone="America/New_York"
        ).status_code
        == 302
    )
    before = limits(advocate.id)
    data = dict(data)
    if data.get("paused_until") == "yesterday":
        data["paused_until"] = (today() - timedelta(days=1)).isoformat()
    if data.get("paused_until") == "far":  # two years and a day after today in Tokyo (the zone posted below)
        tokyo_today = utcnow().astimezone(ZoneInfo("Asia/Tokyo")).date()
        data["paused_until"] = (tokyo_today + timedelta(days=366 * 2 + 1)).isoformat()
    payload = {"max_asks_per_month": "3", "max_asks_per_quarter": "9", "timezone": "Asia/Tokyo", **data}
    resp = set_limits(advocate_client, **payload)
    assert resp.status_code == 422
    assert message in text(resp)
    assert limits(advocate.id) == before


def test_a_pause_ends_by_itself(advocate_client, advocate):
    until = today() + timedelta(days=3)
    set_limits(advocate_client, paused_until=until.isoformat())
    with time_machine.travel(utcnow() + timedelta(days=4)):
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("available", "Available")


# --- blackouts ------------------------------------------------------------------------------------------------------


def test_add_blackouts_overlapping_allowed_and_status_until_the_end_of_the_run(advocate_client, advocate):
    t = today()
    assert add_blackout(advocate_client, t + timedelta(days=20), t + timedelta(days=25), "later").status_code == 302
    assert status_pill(text(advocate_client.get("/dashboard"))) == ("available", "Available")  # not yet
    assert add_blackout(advocate_client, t, t + timedelta(days=3), "launch week").status_code == 302
    assert add_blackout(advocate_client, t + timedelta(days=2), t + timedelta(days=8), "overlaps").status_code == 302
    assert add_blackout(advocate_client, t + timedelta(days=9), t + timedelta(days=9)).status_code == 302  # adjacent
    assert len(blackouts(advocate.id)) == 4
    until = t + timedelta(days=9)  # 0-3, 2-8 and 9-9 form one run; 20-25 is separate
    page = text(advocate_client.get("/me/availability"))
    assert "Blackout added. Nobody will ask you during it." in page
    assert status_pill(page) == ("blackout", f"In a blackout until {fmt(until)}")
    assert status_pill(text(advocate_client.get("/dashboard"))) == ("blackout", f"In a blackout until {fmt(until)}")
    for note in ("launch week", "overlaps", "later"):
        assert note in page


def test_a_pause_wins_over_a_blackout(advocate_client, advocate):
    t = today()
    add_blackout(advocate_client, t, t + timedelta(days=5))
    set_limits(advocate_client, paused_until=(t + timedelta(days=2)).isoformat())
    assert status_pill(text(advocate_client.get("/dashboard")))[0] == "paused"


def test_a_blackout_that_started_in_the_past_can_be_added(advocate_client, advocate):
    t = today()
    assert add_blackout(advocate_client, t - timedelta(days=10), t + timedelta(days=1)).status_code == 302
    assert status_pill(text(advocate_client.get("/dashboard"))) == (
        "blackout",
        f"In a blackout until {fmt(t + timedelta(days=1))}",
    )


INVALID_BLACKOUTS = [
    ("+5", "+1", "", "The last day cannot be before the first day."),
    ("-10", "-1", "", "That period is already over."),
    ("+0", "+400", "", "A blackout can last at most a year"),
    ("", "+3", "", "Give the first day."),
    ("+1", "", "", "Give the last day."),
    ("2025-02-30", "+3", "", "Not a valid date value"),
    ("+1", "next friday", "", "Not a valid date value"),
    ("+1", "+2", "n" * 201, "cannot be longer than 200"),
]


@pytest.mark.parametrize(
    "start,end,note,message", INVALID_BLACKOUTS, ids=[str(i) for i in range(len(INVALID_BLACKOUTS))]
)
def test_invalid_blackouts_are_refused_and_nothing_saved(advocate_client, advocate, start, end, note, message):
    set_limits(advocate_client, max_asks_per_month="4", max_asks_per_quarter="10", timezone="Europe/Paris")
    add_blackout(advocate_client, today() + timedelta(days=30), today() + timedelta(days=31), "existing")
    before_b, before_l = blackouts(advocate.id), limits(advocate.id)

    def when(v):
        return (today() + timedelta(days=int(v))).isoformat() if v and v[0] in "+-" else v

    resp = add_blackout(advocate_client, when(start), when(end), note)
    assert resp.status_code == 422
    page = text(resp)
    assert message in page
    assert blackouts(advocate.id) == before_b and limits(advocate.id) == before_l
    # The refused blackout form does not blank the limits form shown next to it.
    assert re.search(r'<input[^>]*name="max_asks_per_month"[^>]*value="4"', page)
    assert re.search(r'<input[^>]*name="max_asks_per_quarter"[^>]*value="10"', page)
    assert '<option selected value="Europe/Paris">' in page


def test_past_blackouts_collapse_into_history(advocate_client, advocate):
    t = today()
    add_blackout(advocate_client, t, t + timedelta(days=2), "short trip")
    add_blackout(advocate_client, t + timedelta(days=5), t + timedelta(days=6), "conference")
    add_blackout(advocate_client, t + timedelta(days=40), t + timedelta(days=45), "holiday")
    page = text(advocate_client.get("/me/availability"))
    assert "Past blackouts" not in page
    with time_machine.travel(utcnow() + timedelta(days=10)):
        ensure_login(advocate_client, advocate.email)  # sessions do not last forever
        page = text(advocate_client.get("/me/availability"))
        assert "<summary>Past blackouts (2)</summary>" in page
        upcoming, history = page.split("<summary>Past blackouts (2)</summary>")
        assert "holiday" in upcoming and "short trip" not in upcoming and "conference" not in upcoming
        assert "short trip" in history and "conference" in history
        assert history.index("conference") < history.index("short trip")  # most recent first
        assert status_pill(page) == ("available", "Available")
    with time_machine.travel(utcnow() + timedelta(days=41)):
        ensure_login(advocate_client, advocate.email)
        page = text(advocate_client.get("/me/availability"))
        assert status_pill(page) == ("blackout", f"In a blackout until {fmt(t + timedelta(days=45))}")
        assert "Past blackouts (2)" in page


def test_remove_own_blackout(advocate_client, advocate):
    add_blackout(advocate_client, today() + timedelta(days=1), today() + timedelta(days=2), "to remove")
    add_blackout(advocate_client, today() + timedelta(days=3), today() + timedelta(days=4), "to keep")
    b_id = db.session.scalar(select(Blackout.id).where(Blackout.note == "to remove"))
    db.session.rollback()
    resp = delete_blackout(advocate_client, b_id)
    assert resp.status_code == 302
    assert [x[2] for x in blackouts(advocate.id)] == ["to keep"]
    assert "Blackout removed." in text(advocate_client.get("/me/availability"))
    assert delete_blackout(advocate_client, b_id).status_code == 404  # twice: gone


def test_removing_without_csrf_token_is_refused(advocate_client, advocate):
    add_blackout(advocate_client, today() + timedelta(days=1), today() + timedelta(days=2), "stays")
    b = db.session.scalar(select(Blackout.id))
    db.session.rollback()
    assert advocate_client.post(f"/me/availability/blackouts/{b}/delete").status_code == 400
    assert len(blackouts(advocate.id)) == 1


@pytest.mark.parametrize("bad_id", ["99999", "2147483648", "99999999999999999999", "0"])
def test_removing_a_missing_blackout_is_404(advocate_client, bad_id):
    assert delete_blackout(advocate_client, bad_id).status_code == 404


def test_an_advocate_cannot_see_or_remove_another_advocates_blackouts(app, advocate_client, advocate, make_user):
    add_blackout(advocate_client, today() + timedelta(days=1), today() + timedelta(days=9), "Ada's secret leave")
    set_limits(advocate_client, max_asks_per_month="1", max_asks_per_quarter="2", timezone="Asia/Tokyo")
    mine = db.session.scalar(select(Blackout.id).where(Blackout.user_id == advocate.id))
    db.session.rollback()
    before_b, before_l = blackouts(advocate.id), limits(advocate.id)
    other = make_user(email="mallory@example.com", name="Mallory")
    oc = app.test_client()
    login(oc, other.email)
    assert delete_blackout(oc, mine).status_code == 404
    assert blackouts(advocate.id) == before_b
    # Ids in the URL or the form do not pick whose availability changes.
    assert (
        post_form(
            oc,
            f"/me/availability?user_id={advocate.id}",
            {"user_id": str(advocate.id), "timezone": "UTC", "paused_until": ""},
        ).status_code
        == 302
    )
    assert (
        post_form(
            oc,
            "/me/availability/blackouts",
            {
                "user_id": str(advocate.id),
                "starts_on": today().isoformat(),
                "ends_on": (today() + timedelta(days=1)).isoformat(),
                "note": "Mallory's",
            },
            page="/me/availability",
        ).status_code
        == 302
    )
    assert blackouts(advocate.id) == before_b and limits(advocate.id) == before_l
    assert [b[2] for b in blackouts(other.id)] == ["Mallory's"]
    for path in ("/me/availability", f"/me/availability?user_id={advocate.id}", "/dashboard"):
        assert "Ada&#39;s secret leave" not in text(oc.get(path))
    assert "Ada's secret leave" not in oc.get("/me/data.json").get_data(as_text=True)


def test_staff_admin_and_anonymous_are_kept_out(client, staff_client, admin_client, staff):
    for c in (staff_client, admin_client):
        assert c.get("/me/availability").status_code == 403
        assert post_form(c, "/me/availability", {"timezone": "UTC"}, page="/").status_code == 403
        assert (
            post_form(
                c,
                "/me/availability/blackouts",
                {"starts_on": today().isoformat(), "ends_on": today().isoformat()},
                page="/",
            ).status_code
            == 403
        )
        assert post_form(c, "/me/availability/blackouts/1/delete", {}, page="/").status_code == 403
    assert db.session.get(AdvocateProfile, staff.id) is None
    resp = client.get("/me/availability")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_blackout_note_is_escaped_and_exported_exactly(advocate_client, advocate):
    t = today()
    note_rtl = "חופשה 🏖️ إجازة"
    add_blackout(advocate_client, t + timedelta(days=1), t + timedelta(days=2), SCRIPT)
    add_blackout(advocate_client, t + timedelta(days=3), t + timedelta(days=4), note_rtl)
    page = text(advocate_client.get("/me/availability"))
    assert SCRIPT not in page and "&lt;script&gt;alert(" in page and note_rtl in page
    with time_machine.travel(utcnow() + timedelta(days=10)):
        ensure_login(advocate_client, advocate.email)
        history = text(advocate_client.get("/me/availability")).split("Past blackouts")[1]
        assert SCRIPT not in history and "&lt;script&gt;alert(" in history
    db.session.rollback()
    ensure_login(advocate_client, advocate.email)
    data = json.loads(advocate_client.get("/me/data.json").get_data(as_text=True))
    assert [b["note"] for b in data["profile"]["availability"]["blackouts"]] == [SCRIPT, note_rtl]
    assert data["profile"]["availability"]["blackouts"][0]["starts_on"] == (t + timedelta(days=1)).isoformat()


# --- time zones ---------------------------------------------------------------------------------------------------


def test_only_real_places_are_offered_as_time_zones(advocate_client, app):
    with app.test_request_context():
        choices = [value for value, *_ in LimitsForm(formdata=None).timezone.iter_choices()]
    assert choices[0] == "UTC" and choices[1:] == sorted(choices[1:])
    assert {
        "Europe/Paris",
        "America/Argentina/Buenos_Aires",
        "Asia/Kolkata",
        "Pacific/Auckland",
        "Antarctica/Troll",
    } <= set(choices)
    for odd in (
        "localtime",
        "Factory",
        "posixrules",
        "EST5EDT",
        "Etc/GMT+5",
        "Etc/UTC",
        "US/Eastern",
        "GB",
        "Japan",
        "Zulu",
        "GMT0",
    ):
        assert odd not in choices, odd
    assert all("/" in c for c in choices[1:])
    assert set(choices) <= available_timezones() | {"UTC"}
    page = text(advocate_client.get("/me/availability"))
    assert 'value="localtime"' not in page and 'value="Factory"' not in page
    # The service keeps the same list (a form is not the only way in).
    for odd in ("localtime", "Factory", "Etc/GMT+5"):
        with pytest.raises(DomainError, match="Choose a time zone from the list."):
            profiles.set_limits(db.session, None, None, None, None, odd)


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def test_status_and_history_use_the_advocates_day_not_utcs(advocate_client, advocate):
    """Los Angeles is 7 hours behind UTC in summer: at 03:00 UTC on the day after a blackout, it is still the
    blackout's last evening there."""
    last = date(2031, 7, 10)
    with time_machine.travel(_at(last - timedelta(days=5), 12), tick=False):
        ensure_login(advocate_client, advocate.email)
        assert set_limits(advocate_client, timezone="America/Los_Angeles").status_code == 302
        assert add_blackout(advocate_client, last - timedelta(days=2), last, "conference").status_code == 302
    with time_machine.travel(_at(last + timedelta(days=1), 3), tick=False):  # 20:00 on the 10th in LA
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("blackout", f"In a blackout until {fmt(last)}")
        page = text(advocate_client.get("/me/availability"))
        assert status_pill(page) == ("blackout", f"In a blackout until {fmt(last)}")
        assert "Past blackouts" not in page and "conference" in page  # still current, not history
    with time_machine.travel(_at(last + timedelta(days=1), 8), tick=False):  # 01:00 on the 11th in LA
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("available", "Available")
        page = text(advocate_client.get("/me/availability"))
        assert "<summary>Past blackouts (1)</summary>" in page


def test_a_blackout_starts_at_the_advocates_midnight(advocate_client, advocate):
    """Auckland is 12 hours ahead of UTC in winter: its new day starts at noon UTC."""
    first = date(2031, 7, 10)
    with time_machine.travel(_at(first - timedelta(days=5), 12), tick=False):
        ensure_login(advocate_client, advocate.email)
        assert set_limits(advocate_client, timezone="Pacific/Auckland").status_code == 302
        assert add_blackout(advocate_client, first, first + timedelta(days=3)).status_code == 302
    with time_machine.travel(_at(first - timedelta(days=1), 11), tick=False):  # 23:00 on the 9th in Auckland
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("available", "Available")
    with time_machine.travel(_at(first - timedelta(days=1), 13), tick=False):  # 01:00 on the 10th in Auckland
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == (
            "blackout",
            f"In a blackout until {fmt(first + timedelta(days=3))}",
        )


def test_a_pause_lasts_to_the_end_of_its_day_where_the_advocate_is(advocate_client, advocate):
    until = date(2031, 7, 10)
    with time_machine.travel(_at(until - timedelta(days=5), 12), tick=False):
        ensure_login(advocate_client, advocate.email)
        assert (
            set_limits(advocate_client, timezone="America/Los_Angeles", paused_until=until.isoformat()).status_code
            == 302
        )
    with time_machine.travel(_at(until + timedelta(days=1), 3), tick=False):  # still the 10th in LA
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("paused", f"Paused until {fmt(until)}")
        # "Today" for the form is LA's too: a pause until the 10th can still be set, a blackout ending then too.
        assert (
            set_limits(advocate_client, timezone="America/Los_Angeles", paused_until=until.isoformat()).status_code
            == 302
        )
        assert add_blackout(advocate_client, until, until).status_code == 302
    with time_machine.travel(_at(until + timedelta(days=1), 8), tick=False):  # the 11th in LA
        ensure_login(advocate_client, advocate.email)
        assert status_pill(text(advocate_client.get("/dashboard"))) == ("available", "Available")
        resp = set_limits(advocate_client, timezone="America/Los_Angeles", paused_until=until.isoformat())
        assert resp.status_code == 422 and "A pause must last until today or a later date." in text(resp)
