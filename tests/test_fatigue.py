"""Protection from over-use: the program's policy (engagements in a rolling 90 days, days between
reference calls) editable by admins, the advocate's own limits (asks a month and a quarter, pause,
blackouts), refusals in plain words, the admin override with a recorded reason, and the fatigue
status admins see (available / near limit / at limit / unavailable / under-used)."""
import re
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine

from portal.extensions import db
from portal.models import (AdvocateProfile, AuditEvent, Blackout, Opportunity, Participation, ParticipationStatus,
                           ProgramSetting, Role, SelectionMode, User, utcnow)
from portal.services import fatigue, participation
from tests.conftest import reload
from tests.helpers import post_form
from tests.opportunity_support import client_for, make_advocate, make_opp, participation_of, text_of, user

T0 = datetime(2031, 3, 3, 10, 0, tzinfo=timezone.utc)  # a Monday, well inside a month and a quarter


def engaged(user_id, when, key="speaking", status=ParticipationStatus.COMPLETED, title=None):
    """A past engagement of the advocate, as the rules see it (approved at ``when``)."""
    oid = make_opp(key, title=title or f"{key} at {when:%Y-%m-%d %H:%M}")
    db.session.add(Participation(opportunity_id=oid, user_id=user_id, status=status, requested_at=when,
                                 engaged_at=when, decided_at=when))
    db.session.commit()
    return oid


def ask(user_id, oid):
    """The advocate requests through the service, as the view does; returns the participation."""
    p = participation.request(db.session, user(user_id), oid)
    db.session.commit()
    return p


def refused(user_id, oid) -> str:
    with pytest.raises(participation.FatigueBlocked) as err:
        participation.request(db.session, user(user_id), oid)
    db.session.rollback()
    assert participation_of(user_id, oid) is None
    return err.value.message


def row_for(body: str, needle: str) -> str:
    rows = [r for r in re.findall(r"<tr>.*?</tr>", body, flags=re.S) if needle in r]
    assert len(rows) == 1, f"{needle!r} in {len(rows)} rows"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows[0])).strip()


# --- the program policy ---------------------------------------------------------------------------------------------


def test_policy_defaults_and_the_settings_page(app, admin_client, admin):
    pol = fatigue.policy(db.session)
    assert (pol.max_engagements_90d, pol.reference_call_gap_days) == (4, 30)
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="max_engagements_90d"[^>]*value="4"', page)
    assert re.search(r'id="reference_call_gap_days"[^>]*value="30"', page)

    resp = post_form(admin_client, "/admin/settings", {"max_engagements_90d": "6", "reference_call_gap_days": "45"},
                     follow_redirects=True)
    assert "The fatigue policy is saved." in text_of(resp)
    db.session.rollback()
    pol = fatigue.policy(db.session)
    assert (pol.max_engagements_90d, pol.reference_call_gap_days) == (6, 45)
    [event] = db.session.query(AuditEvent).filter_by(action="settings.fatigue").all()
    assert event.actor_id == admin.id
    assert event.details == {"max_engagements_90d": 6, "reference_call_gap_days": 45}
    assert db.session.get(ProgramSetting, "max_engagements_90d").updated_by_id == admin.id
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="max_engagements_90d"[^>]*value="6"', page)


@pytest.mark.parametrize("data,message", [
    ({"max_engagements_90d": "0", "reference_call_gap_days": "30"}, "Number must be between 1 and 365."),
    ({"max_engagements_90d": "", "reference_call_gap_days": "30"}, "This field is required."),
    ({"max_engagements_90d": "366", "reference_call_gap_days": "30"}, "Number must be between 1 and 365."),
    ({"max_engagements_90d": "many", "reference_call_gap_days": "30"}, "Not a valid integer value."),
    ({"max_engagements_90d": "4", "reference_call_gap_days": "-1"}, "Number must be between 0 and 365."),
    ({"max_engagements_90d": "4", "reference_call_gap_days": "999"}, "Number must be between 0 and 365."),
])
def test_invalid_policy_is_422_and_changes_nothing(app, admin_client, data, message):
    resp = post_form(admin_client, "/admin/settings", data)
    assert resp.status_code == 422 and message in text_of(resp)
    db.session.rollback()
    assert db.session.query(ProgramSetting).count() == 0
    assert db.session.query(AuditEvent).filter_by(action="settings.fatigue").count() == 0


def test_a_changed_policy_applies_at_once(app, make_user, admin_client):
    adv = make_advocate(make_user, "policy@example.com", name="Polly")
    engaged(adv, utcnow() - timedelta(days=5))
    engaged(adv, utcnow() - timedelta(days=4))
    oid = make_opp(title="Third", mode=SelectionMode.FIRST_COME)
    post_form(admin_client, "/admin/settings", {"max_engagements_90d": "2", "reference_call_gap_days": "30"})
    assert refused(adv, oid) == "The program allows at most 2 engagements in 90 days; Polly has 2."
    post_form(admin_client, "/admin/settings", {"max_engagements_90d": "3", "reference_call_gap_days": "30"})
    assert ask(adv, oid).status == ParticipationStatus.APPROVED


# --- the rolling 90 days ------------------------------------------------------------------------------------------


def test_fifth_engagement_in_90_days_refused_until_the_oldest_is_90_days_old(app, make_user):
    adv = make_advocate(make_user, "busy@example.com", name="Bea Busy")
    with time_machine.travel(T0, tick=False):
        firsts = [make_opp(title=f"Talk {i}", mode=SelectionMode.FIRST_COME) for i in range(4)]
        ask(adv, firsts[0])  # the oldest engagement: T0
    for i, days in enumerate((10, 20, 30), start=1):
        with time_machine.travel(T0 + timedelta(days=days), tick=False):
            assert ask(adv, firsts[i]).status == ParticipationStatus.APPROVED
    fifth = make_opp(title="Fifth talk", mode=SelectionMode.FIRST_COME)

    with time_machine.travel(T0 + timedelta(days=89, hours=23), tick=False):
        assert refused(adv, fifth) == "The program allows at most 4 engagements in 90 days; Bea Busy has 4."
        # through the page, in plain words
        c = client_for(app, adv)
        resp = post_form(c, f"/opportunities/{fifth}/request", {}, page=f"/opportunities/{fifth}",
                         follow_redirects=True)
        assert "The program allows at most 4 engagements in 90 days; Bea Busy has 4." in text_of(resp)
        assert participation_of(adv, fifth) is None
        assert reload(Opportunity, fifth).seats_taken == 0

    with time_machine.travel(T0 + timedelta(days=90, minutes=1), tick=False):
        p = ask(adv, fifth)
        assert p.status == ParticipationStatus.APPROVED
        assert fatigue.check(db.session, user(adv), db.session.get(Opportunity, make_opp(title="Sixth"))) == [
            "The program allows at most 4 engagements in 90 days; Bea Busy has 4."]


def test_withdrawn_declined_and_requested_do_not_count_as_engagements(app, make_user):
    adv = make_advocate(make_user, "light@example.com")
    now = utcnow()
    for status in (ParticipationStatus.WITHDRAWN, ParticipationStatus.DECLINED, ParticipationStatus.REQUESTED,
                   ParticipationStatus.NO_SHOW):
        engaged(adv, now - timedelta(days=1), status=status, title=f"{status.value}")
    for d in (2, 3, 4):
        engaged(adv, now - timedelta(days=d))
    assert ask(adv, make_opp(title="Fourth", mode=SelectionMode.FIRST_COME)).status == ParticipationStatus.APPROVED


# --- reference calls -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("days_apart,allowed", [(29, False), (30, True)])
def test_reference_calls_29_vs_30_days_apart(app, make_user, days_apart, allowed):
    adv = make_advocate(make_user, "ref@example.com", name="Rey Ref")
    with time_machine.travel(T0, tick=False):
        ask(adv, make_opp("reference_call", title="Call with Bank A", mode=SelectionMode.FIRST_COME))
        other = make_opp("speaking", title="A talk the next day", mode=SelectionMode.FIRST_COME)
    second = make_opp("reference_call", title="Call with Bank B", mode=SelectionMode.FIRST_COME)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        assert ask(adv, other).status == ParticipationStatus.APPROVED  # the gap is for reference calls only
    with time_machine.travel(T0 + timedelta(days=days_apart), tick=False):
        if allowed:
            assert ask(adv, second).status == ParticipationStatus.APPROVED
        else:
            assert refused(adv, second) == ("The program keeps at least 30 days between reference calls; "
                                            "Rey Ref's last one was on 3 Mar 2031.")


def test_reference_call_gap_follows_the_setting(app, make_user, admin):
    adv = make_advocate(make_user, "gap@example.com", name="Gabe")
    engaged(adv, utcnow() - timedelta(days=35), key="reference_call")
    call = make_opp("reference_call", title="Call", mode=SelectionMode.FIRST_COME)
    fatigue.set_policy(db.session, {"reference_call_gap_days": 45}, admin.id)
    db.session.commit()
    assert "at least 45 days between reference calls" in refused(adv, call)
    fatigue.set_policy(db.session, {"reference_call_gap_days": 0}, admin.id)  # 0: no gap
    db.session.commit()
    assert ask(adv, call).status == ParticipationStatus.APPROVED


# --- the advocate's own limits --------------------------------------------------------------------------------


def test_own_monthly_limit_resets_on_the_first_of_the_month(app, make_user):
    adv = make_advocate(make_user, "monthly@example.com", name="Mo", max_asks_per_month=2)
    opps = [make_opp(title=f"Ask {i}", capacity=10) for i in range(4)]  # selection: asks, not engagements
    with time_machine.travel(datetime(2031, 1, 5, 12, tzinfo=timezone.utc), tick=False):
        ask(adv, opps[0])
    with time_machine.travel(datetime(2031, 1, 31, 23, 58, tzinfo=timezone.utc), tick=False):
        ask(adv, opps[1])
    with time_machine.travel(datetime(2031, 1, 31, 23, 59, 59, tzinfo=timezone.utc), tick=False):
        assert refused(adv, opps[2]) == "Mo asked for at most 2 ask(s) a month and has 2 this month."
    with time_machine.travel(datetime(2031, 2, 1, 0, 0, 1, tzinfo=timezone.utc), tick=False):
        assert ask(adv, opps[2]).status == ParticipationStatus.REQUESTED
        ask(adv, opps[3])


def test_own_quarterly_limit_resets_on_the_first_of_the_quarter(app, make_user):
    adv = make_advocate(make_user, "quarterly@example.com", name="Quinn", max_asks_per_quarter=2)
    opps = [make_opp(title=f"Ask {i}", capacity=10) for i in range(3)]
    with time_machine.travel(datetime(2031, 1, 20, 12, tzinfo=timezone.utc), tick=False):
        ask(adv, opps[0])
    with time_machine.travel(datetime(2031, 3, 2, 12, tzinfo=timezone.utc), tick=False):
        ask(adv, opps[1])
    with time_machine.travel(datetime(2031, 3, 31, 23, 59, tzinfo=timezone.utc), tick=False):
        assert refused(adv, opps[2]) == "Quinn asked for at most 2 ask(s) a quarter and has 2 this quarter."
    with time_machine.travel(datetime(2031, 4, 1, 0, 1, tzinfo=timezone.utc), tick=False):
        assert ask(adv, opps[2]).status == ParticipationStatus.REQUESTED


def test_own_limits_are_not_checked_again_on_approval(app, make_user, admin_client):
    adv = make_advocate(make_user, "limits@example.com", max_asks_per_month=1)
    oid = make_opp(title="Only ask", capacity=2)
    c = client_for(app, adv)
    post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    p = participation_of(adv, oid)
    post_form(admin_client, f"/admin/participations/{p.id}/approve", {}, page=f"/admin/opportunities/{oid}")
    assert participation_of(adv, oid).status == ParticipationStatus.APPROVED


# --- pause and blackouts at approval, and the override ---------------------------------------------------------


def _approve(admin_client, pid, oid, **data):
    return post_form(admin_client, f"/admin/participations/{pid}/approve", data, page=f"/admin/opportunities/{oid}",
                     follow_redirects=True)


def test_pause_after_requesting_blocks_approval_until_overridden(app, make_user, admin_client, admin, mailbox):
    adv = make_advocate(make_user, "pause@example.com", name="Pat Pause")
    oid = make_opp(title="Talk", capacity=3)
    ask(adv, oid)
    until = date.today() + timedelta(days=14)
    db.session.query(AdvocateProfile).filter_by(user_id=adv).update({"paused_until": until})
    db.session.commit()
    p = participation_of(adv, oid)
    resp = _approve(admin_client, p.id, oid)
    expected = f"Pat Pause has paused all asks until {until.strftime('%d %b %Y').lstrip('0')}."
    assert f"Not approved: {expected} To approve anyway, give an override reason." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.REQUESTED and p.override_reason is None
    assert reload(Opportunity, oid).seats_taken == 0
    assert not mailbox.to("pause@example.com") or all("You're in" not in m.subject
                                                       for m in mailbox.to("pause@example.com"))

    resp = _approve(admin_client, p.id, oid, override_reason="The CEO asked for Pat personally")
    assert "Approved; the advocate has been emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason == "The CEO asked for Pat personally"
    [event] = db.session.query(AuditEvent).filter_by(action="participation.override").all()
    assert event.actor_id == admin.id and event.target_type == "participation" and event.target_id == p.id
    assert event.details["reason"] == "The CEO asked for Pat personally" and event.details["reasons"] == [expected]
    assert mailbox.last("pause@example.com", subject="You're in: Talk")
    assert "override: The CEO asked for Pat personally" in text_of(admin_client.get(f"/admin/opportunities/{oid}"))


def test_blackout_on_the_event_date_blocks_approval(app, make_user, admin_client):
    adv = make_advocate(make_user, "blackout@example.com", name="Bo Black")
    event = date(2031, 9, 15)
    oid = make_opp(title="Conference", capacity=3, event_date=event)
    ask(adv, oid)
    db.session.add(Blackout(user_id=adv, starts_on=date(2031, 9, 1), ends_on=date(2031, 9, 30)))
    db.session.commit()
    p = participation_of(adv, oid)
    resp = _approve(admin_client, p.id, oid)
    assert "Bo Black is in a blackout from 1 Sep 2031 to 30 Sep 2031." in text_of(resp)
    assert participation_of(adv, oid).status == ParticipationStatus.REQUESTED
    # a blackout on other dates does not matter
    db.session.query(Blackout).filter_by(user_id=adv).update({"starts_on": date(2031, 10, 1),
                                                              "ends_on": date(2031, 10, 30)})
    db.session.commit()
    _approve(admin_client, p.id, oid)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason is None


def test_override_over_the_program_limit_and_not_without_a_violation(app, make_user, admin_client):
    adv = make_advocate(make_user, "over@example.com", name="Ollie Over")
    friend = make_advocate(make_user, "fine@example.com", name="Fran Fine")
    oid = make_opp(title="Launch video", capacity=5)
    ask(adv, oid)
    ask(friend, oid)
    for d in (1, 2, 3, 4):  # engaged four times since requesting
        engaged(adv, utcnow() - timedelta(days=d))
    p = participation_of(adv, oid)
    resp = _approve(admin_client, p.id, oid, override_reason="   ")  # blank is no reason
    assert "Not approved: The program allows at most 4 engagements in 90 days; Ollie Over has 4." in text_of(resp)
    assert participation_of(adv, oid).status == ParticipationStatus.REQUESTED
    _approve(admin_client, p.id, oid, override_reason="Only customer on the new product")
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason == "Only customer on the new product"
    # an override reason given where no rule is broken is not an override
    q = participation_of(friend, oid)
    _approve(admin_client, q.id, oid, override_reason="not needed")
    q = participation_of(friend, oid)
    assert q.status == ParticipationStatus.APPROVED and q.override_reason is None
    db.session.rollback()
    overrides = db.session.query(AuditEvent).filter_by(action="participation.override").all()
    assert [e.target_id for e in overrides] == [p.id]


# --- fatigue status for admins ----------------------------------------------------------------------------------


def _set_since(user_id, days):
    then = utcnow() - timedelta(days=days)
    db.session.query(User).filter_by(id=user_id).update({"approved_at": then, "created_at": then})
    db.session.commit()


def test_fatigue_status_on_admin_advocates_and_participants(app, make_user, admin_client):
    now = utcnow()
    names = {"available": "Ann Alpha", "near": "Ben Bravo", "at": "Cid Charlie", "own limit": "Dee Delta",
             "paused": "Eve Echo", "blackout": "Fay Foxtrot", "new, idle": "Gus Golf", "stale": "Hal Hotel",
             "recent enough": "Ivy India"}
    people = {}

    def person(key, **profile):
        first = names[key].split()[0].lower()
        people[key] = make_advocate(make_user, f"{first}.x@example.com", name=names[key], **profile)
        return people[key]

    engaged(person("available"), now - timedelta(days=10))
    for d in (1, 2, 3):
        engaged(people.get("near") or person("near"), now - timedelta(days=d))
    for d in (1, 2, 3, 4):
        engaged(people.get("at") or person("at"), now - timedelta(days=d))
    engaged(person("own limit", max_asks_per_month=1), now, status=ParticipationStatus.REQUESTED)
    person("paused", paused_until=date.today() + timedelta(days=3))
    person("blackout", blackouts=[(date.today() - timedelta(days=1), date.today() + timedelta(days=1))])
    _set_since(person("new, idle"), 200)
    _set_since(person("stale"), 400)
    engaged(people["stale"], now - timedelta(days=181))
    _set_since(person("recent enough"), 400)
    engaged(people["recent enough"], now - timedelta(days=179))
    expected = {"available": "available", "near": "near_limit", "at": "at_limit", "own limit": "at_limit",
                "paused": "unavailable", "blackout": "unavailable", "new, idle": "under_used",
                "stale": "under_used", "recent enough": "available"}
    got = fatigue.statuses(db.session, list(people.values()))
    assert {key: got[uid].key for key, uid in people.items()} == expected

    labels = {"available": "Available", "near_limit": "Near limit", "at_limit": "At limit",
              "unavailable": "Paused or in blackout", "under_used": "Under-used"}
    body = admin_client.get("/admin/advocates").get_data(as_text=True)
    for key, uid in people.items():
        row = row_for(body, names[key])
        assert labels[expected[key]] in row, (key, row)
        assert sum(label in row for label in labels.values()) == 1, row
    assert "4 in 90 days" in row_for(body, names["at"]) and "3 in 90 days" in row_for(body, names["near"])
    only = text_of(admin_client.get("/admin/advocates?fatigue=under_used"))
    assert names["new, idle"] in only and names["stale"] in only and names["recent enough"] not in only
    only = text_of(admin_client.get("/admin/advocates?fatigue=at_limit"))
    assert names["at"] in only and names["own limit"] in only and names["near"] not in only

    # the same status next to each participant of an opportunity
    oid = make_opp(title="Who is tired", capacity=20)
    for uid in people.values():
        db.session.add(Participation(opportunity_id=oid, user_id=uid, status=ParticipationStatus.REQUESTED,
                                     requested_at=now - timedelta(days=120)))
    db.session.commit()
    body = admin_client.get(f"/admin/opportunities/{oid}").get_data(as_text=True)
    for key, uid in people.items():
        row = row_for(body, names[key])
        assert labels[expected[key]] in row, (key, row)


def test_only_active_advocates_are_listed(app, make_user, admin_client):
    make_advocate(make_user, "listed@example.com")
    make_user(Role.STAFF, email="staffer@example.com")
    body = admin_client.get("/admin/advocates").get_data(as_text=True)
    assert "listed@example.com" in body and "staffer@example.com" not in body
