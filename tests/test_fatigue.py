"""Protection from over-use: the program's policy (engagements in a rolling 90 days, days between
reference calls) editable by admins, the advocate's own limits (asks a month and a quarter, pause,
blackouts), refusals in plain words, the admin override with a recorded reason, and the fatigue
status admins see (available / near limit / at limit / unavailable / under-used)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    AuditEvent,
    Blackout,
    Opportunity,
    Participation,
    ParticipationStatus,
    ProgramSetting,
    Role,
    SelectionMode,
    User,
    utcnow,
)
from portal.services import fatigue, participation
from portal.services.errors import DomainError
from search import backend as search_backend
from search.indexing import apply_pending
from tests.support import (
    client_for,
    engaged,
    find,
    indexed,
    make_advocate,
    make_opp,
    participation_of,
    pending_rows,
    post_form,
    recorded_sql,
    reload,
    settings_form,
    text_of,
    user,
)

T0 = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, well inside a month and a quarter


def ask(user_id, oid):
    """The advocate requests through the service, as the view does; returns the participation."""
    p = participation.request(db.session, user(user_id), oid)
    db.session.commit()
    return p


def refused(user_id, oid) -> str:
    """The refusal of the advocate's request, in the admins' words (third person)."""
    return " ".join(refusal(user_id, oid).reasons)


def refusal(user_id, oid) -> fatigue.AskRefused:
    with pytest.raises(fatigue.AskRefused) as err:
        participation.request(db.session, user(user_id), oid)
    db.session.rollback()
    assert participation_of(user_id, oid) is None
    return err.value


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

    resp = post_form(
        admin_client,
        "/admin/settings",
        settings_form(max_engagements_90d="6", reference_call_gap_days="45"),
        follow_redirects=True,
    )
    assert "Settings saved." in text_of(resp)
    db.session.rollback()
    pol = fatigue.policy(db.session)
    assert (pol.max_engagements_90d, pol.reference_call_gap_days) == (6, 45)
    [event] = db.session.query(AuditEvent).filter_by(action="settings.update").all()
    assert event.actor_id == admin.id
    assert event.details == {
        "before": {"max_engagements_90d": 4, "reference_call_gap_days": 30},
        "after": {"max_engagements_90d": 6, "reference_call_gap_days": 45},
    }
    assert db.session.get(ProgramSetting, "max_engagements_90d").updated_by_id == admin.id
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="max_engagements_90d"[^>]*value="6"', page)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"max_engagements_90d": "0", "reference_call_gap_days": "30"}, "Number must be between 1 and 365."),
        ({"max_engagements_90d": "", "reference_call_gap_days": "30"}, "This field is required."),
        ({"max_engagements_90d": "366", "reference_call_gap_days": "30"}, "Number must be between 1 and 365."),
        ({"max_engagements_90d": "many", "reference_call_gap_days": "30"}, "Not a valid integer value."),
        ({"max_engagements_90d": "4", "reference_call_gap_days": "-1"}, "Number must be between 0 and 365."),
        ({"max_engagements_90d": "4", "reference_call_gap_days": "999"}, "Number must be between 0 and 365."),
    ],
)
def test_invalid_policy_is_422_and_changes_nothing(app, admin_client, data, message):
    resp = post_form(admin_client, "/admin/settings", settings_form(**data))
    assert resp.status_code == 422 and message in text_of(resp)
    db.session.rollback()
    assert db.session.query(ProgramSetting).count() == 0
    assert db.session.query(AuditEvent).filter_by(action="settings.update").count() == 0


def test_a_changed_policy_applies_at_once(app, make_user, admin_client):
    adv = make_advocate(make_user, "policy@example.com", name="Polly")
    engaged(adv, utcnow() - timedelta(days=5))
    engaged(adv, utcnow() - timedelta(days=4))
    oid = make_opp(title="Third", mode=SelectionMode.FIRST_COME)
    post_form(admin_client, "/admin/settings", settings_form(max_engagements_90d="2", reference_call_gap_days="30"))
    assert refused(adv, oid) == "The program allows at most 2 engagements in 90 days; Polly has 2."
    post_form(admin_client, "/admin/settings", settings_form(max_engagements_90d="3", reference_call_gap_days="30"))
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

    # Engagements count on their day (here: the approval day, the talks have no date): the last
    # minute of day 89 after the oldest is still inside its 90 days, the first minute of day 90 is not.
    with time_machine.travel(datetime(2031, 5, 31, 23, 59, tzinfo=UTC), tick=False):
        assert (T0 + timedelta(days=89)).date() == date(2031, 5, 31)
        assert refused(adv, fifth) == "The program allows at most 4 engagements in 90 days; Bea Busy has 4."
        c = client_for(app, adv)
        resp = post_form(
            c, f"/opportunities/{fifth}/request", {}, page=f"/opportunities/{fifth}", follow_redirects=True
        )
        # through the page, told to the advocate (second person)
        assert (
            "The program asks nobody to take part more than 4 times in 90 days, and you already have 4 in that time."
        ) in text_of(resp)
        assert "Bea Busy" not in text_of(resp)
        assert participation_of(adv, fifth) is None
        assert reload(Opportunity, fifth).seats_taken == 0

    with time_machine.travel(datetime(2031, 6, 1, 0, 1, tzinfo=UTC), tick=False):
        p = ask(adv, fifth)
        assert p.status == ParticipationStatus.APPROVED
        sixth = db.session.get(Opportunity, make_opp(title="Sixth"))
        decision = fatigue.may_ask(db.session, adv, sixth.activity_type, sixth.engagement_date)
        assert decision.for_admin() == ["The program allows at most 4 engagements in 90 days; Bea Busy has 4."]
        assert decision.codes == [fatigue.PROGRAM_LIMIT]


def test_withdrawn_declined_and_requested_do_not_count_as_engagements(app, make_user):
    adv = make_advocate(make_user, "light@example.com")
    now = utcnow()
    for status in (
        ParticipationStatus.WITHDRAWN,
        ParticipationStatus.DECLINED,
        ParticipationStatus.REQUESTED,
        ParticipationStatus.NO_SHOW,
    ):
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
            assert refused(adv, second) == (
                "The program keeps at least 30 days between reference calls; Rey Ref's last one was on 3 Mar 2031."
            )


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
    with time_machine.travel(datetime(2031, 1, 5, 12, tzinfo=UTC), tick=False):
        ask(adv, opps[0])
    with time_machine.travel(datetime(2031, 1, 31, 23, 58, tzinfo=UTC), tick=False):
        ask(adv, opps[1])
    with time_machine.travel(datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC), tick=False):
        assert refused(adv, opps[2]) == "Mo asked for at most two asks a month and has two this month."
    with time_machine.travel(datetime(2031, 2, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        assert ask(adv, opps[2]).status == ParticipationStatus.REQUESTED
        ask(adv, opps[3])


def test_own_quarterly_limit_resets_on_the_first_of_the_quarter(app, make_user):
    adv = make_advocate(make_user, "quarterly@example.com", name="Quinn", max_asks_per_quarter=2)
    opps = [make_opp(title=f"Ask {i}", capacity=10) for i in range(3)]
    with time_machine.travel(datetime(2031, 1, 20, 12, tzinfo=UTC), tick=False):
        ask(adv, opps[0])
    with time_machine.travel(datetime(2031, 3, 2, 12, tzinfo=UTC), tick=False):
        ask(adv, opps[1])
    with time_machine.travel(datetime(2031, 3, 31, 23, 59, tzinfo=UTC), tick=False):
        assert refused(adv, opps[2]) == "Quinn asked for at most two asks a quarter and has two this quarter."
    with time_machine.travel(datetime(2031, 4, 1, 0, 1, tzinfo=UTC), tick=False):
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
    return post_form(
        admin_client,
        f"/admin/participations/{pid}/approve",
        data,
        page=f"/admin/opportunities/{oid}",
        follow_redirects=True,
    )


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
    assert not mailbox.to("pause@example.com") or all(
        "You're in" not in m.subject for m in mailbox.to("pause@example.com")
    )

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
    db.session.query(Blackout).filter_by(user_id=adv).update(
        {"starts_on": date(2031, 10, 1), "ends_on": date(2031, 10, 30)}
    )
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
    names = {
        "available": "Ann Alpha",
        "near": "Ben Bravo",
        "at": "Cid Charlie",
        "own limit": "Dee Delta",
        "paused": "Eve Echo",
        "blackout": "Fay Foxtrot",
        "new, idle": "Gus Golf",
        "stale": "Hal Hotel",
        "recent enough": "Ivy India",
    }
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
    expected = {
        "available": "available",
        "near": "near_limit",
        "at": "at_limit",
        "own limit": "at_limit",
        "paused": "unavailable",
        "blackout": "unavailable",
        "new, idle": "under_used",
        "stale": "under_used",
        "recent enough": "available",
    }
    got = fatigue.statuses(db.session, list(people.values()))
    assert {key: got[uid].key for key, uid in people.items()} == expected

    labels = {
        "available": "Available",
        "near_limit": "Near limit",
        "at_limit": "At limit",
        "unavailable": "Paused or in blackout",
        "under_used": "Under-used",
    }
    body = admin_client.get("/admin/advocates").get_data(as_text=True)
    for key in people:
        row = row_for(body, names[key])
        assert labels[expected[key]] in row, (key, row)
        assert sum(label in row for label in labels.values()) == 1, row
    assert "4 in 90 days" in row_for(body, names["at"]) and "3 in 90 days" in row_for(body, names["near"])
    # The filter reads the statuses the search index holds (search.service.advocate_ids_with_fatigue): the
    # changes above were written straight to the database, dates moved by bulk updates; 'flask search sync'
    # (daily) brings the index to what the rules say, as it does when time alone moves a status.
    search_backend().sync(db.engine)
    only = text_of(admin_client.get("/admin/advocates?fatigue=under_used"))
    assert names["new, idle"] in only and names["stale"] in only and names["recent enough"] not in only
    only = text_of(admin_client.get("/admin/advocates?fatigue=at_limit"))
    assert names["at"] in only and names["own limit"] in only and names["near"] not in only

    # the same status next to each participant of an opportunity
    oid = make_opp(title="Who is tired", capacity=20)
    for uid in people.values():
        db.session.add(
            Participation(
                opportunity_id=oid,
                user_id=uid,
                status=ParticipationStatus.REQUESTED,
                requested_at=now - timedelta(days=120),
            )
        )
    db.session.commit()
    body = admin_client.get(f"/admin/opportunities/{oid}").get_data(as_text=True)
    for key in people:
        row = row_for(body, names[key])
        assert labels[expected[key]] in row, (key, row)


def test_the_admins_advocate_profile_shows_the_fatigue_status(app, make_user, admin_client):
    """The single advocate's page shows the status the advocate list shows, in the same words."""
    busy = make_advocate(make_user, "busy.profile@example.com", name="Bo Busy")
    for d in (1, 2, 3, 4):
        engaged(busy, utcnow() - timedelta(days=d))
    resting = make_advocate(
        make_user, "rest.profile@example.com", name="Ray Rest", paused_until=date.today() + timedelta(days=3)
    )
    listed = admin_client.get("/admin/advocates").get_data(as_text=True)
    for uid, name, key, label, n in (
        (busy, "Bo Busy", "at_limit", "At limit", 4),
        (resting, "Ray Rest", "unavailable", "Paused or in blackout", 0),
    ):
        assert fatigue.status(db.session, uid).key == key
        body = admin_client.get(f"/admin/advocates/{uid}/profile").get_data(as_text=True)
        pill = f'<span class="status-pill fatigue-{key}">{label}</span>'
        [listed_row] = [r for r in re.findall(r"<tr>.*?</tr>", listed, flags=re.S) if name in r]
        assert pill in body and pill in listed_row  # the list's own markup
        page = text_of(body)
        assert f"Fatigue: {label} {n} in 90 days" in page
        assert body.count("status-pill fatigue-") == 1


def test_only_active_advocates_are_listed(app, make_user, admin_client):
    make_advocate(make_user, "listed@example.com")
    make_user(Role.STAFF, email="staffer@example.com")
    body = admin_client.get("/admin/advocates").get_data(as_text=True)
    assert "listed@example.com" in body and "staffer@example.com" not in body


# --- engagements count on the day they happen (not the approval day) ------------------------------------------------


def scheduled(user_id, when: date, approved_at: datetime, key="speaking", title=None):
    """An engagement approved at ``approved_at`` for an event on ``when``."""
    oid = make_opp(key, title=title or f"{key} on {when}", event_date=when)
    db.session.add(
        Participation(
            opportunity_id=oid,
            user_id=user_id,
            status=ParticipationStatus.APPROVED,
            holds_seat=True,
            requested_at=approved_at,
            engaged_at=approved_at,
            decided_at=approved_at,
        )
    )
    db.session.commit()
    return oid


def day(n: int) -> date:
    return (T0 + timedelta(days=n)).date()


def test_reference_calls_5_and_120_days_out_are_both_allowed_though_approved_the_same_day(app, make_user):
    adv = make_advocate(make_user, "calls@example.com", name="Cal Caller")
    with time_machine.travel(T0, tick=False):
        soon = make_opp("reference_call", title="Call in 5 days", event_date=day(5), mode=SelectionMode.FIRST_COME)
        later = make_opp("reference_call", title="Call in 120 days", event_date=day(120), mode=SelectionMode.FIRST_COME)
        assert ask(adv, soon).status == ParticipationStatus.APPROVED
        assert ask(adv, later).status == ParticipationStatus.APPROVED  # 115 days apart when they happen
        # a call 20 days before the later one is too close to it (a future call counts too)
        between = make_opp(
            "reference_call", title="Call in 100 days", event_date=day(100), mode=SelectionMode.FIRST_COME
        )
        assert refused(adv, between) == (
            "The program keeps at least 30 days between reference calls; Cal Caller has one on 1 Jul 2031."
        )
        assert refusal(adv, between).message == (
            "The program keeps at least 30 days between reference calls, and you have one on 1 Jul 2031."
        )


def test_calls_on_consecutive_days_are_refused_though_approved_30_days_apart(app, make_user, admin_client):
    adv = make_advocate(make_user, "twodays@example.com", name="Tad Two")
    with time_machine.travel(T0, tick=False):
        first = make_opp("reference_call", title="Call on day 40", event_date=day(40), mode=SelectionMode.FIRST_COME)
        ask(adv, first)
    nxt = make_opp("reference_call", title="Call on day 41", event_date=day(41), capacity=3)
    far = make_opp("reference_call", title="Call on day 70", event_date=day(70), capacity=3)
    with time_machine.travel(T0 + timedelta(days=30), tick=False):
        assert refused(adv, nxt) == (
            "The program keeps at least 30 days between reference calls; Tad Two has one on 12 Apr 2031."
        )
        assert ask(adv, far).status == ParticipationStatus.REQUESTED  # 30 days after the first call
    # and at approval, the same rule from the other side: the day-70 call against a day-41 call
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        db.session.add(
            Participation(
                opportunity_id=nxt,
                user_id=adv,
                status=ParticipationStatus.COMPLETED,
                requested_at=utcnow(),
                engaged_at=utcnow(),
            )
        )
        db.session.commit()
        p = participation_of(adv, far)
        reasons = fatigue.may_ask(
            db.session,
            adv,
            p.opportunity.activity_type,
            p.opportunity.engagement_date,
            counts_as_ask=False,
            exclude_participation_id=p.id,
        ).for_admin()
        assert reasons == [
            "The program keeps at least 30 days between reference calls; Tad Two has one on 13 Apr 2031."
        ]


@pytest.mark.parametrize("event_day,allowed", [(7, True), (150, False), (189, False), (190, True)])
def test_the_90_days_hold_the_engagements_that_happen_in_them(app, make_user, event_day, allowed):
    """Four talks approved today happen on days 100-103: a talk next week is fine; one on day 150 or
    189 shares a 90-day window with all four; from day 190 on, no window holds them all and it."""
    adv = make_advocate(make_user, "far@example.com", name="Eve Ent")
    with time_machine.travel(T0, tick=False):
        for i in range(4):
            scheduled(adv, day(100 + i), T0)
        oid = make_opp(title="Another talk", event_date=day(event_day), mode=SelectionMode.FIRST_COME)
        if allowed:
            assert ask(adv, oid).status == ParticipationStatus.APPROVED
        else:
            when = day(event_day).strftime("%d %b %Y").lstrip("0")
            assert refused(adv, oid) == (
                f"The program allows at most 4 engagements in 90 days; Eve Ent has 4 in the 90 days around {when}."
            )
            assert refusal(adv, oid).message == (
                f"The program asks nobody to take part more than 4 times in 90 days, and you already have 4 in "
                f"the 90 days around {when}."
            )


def test_engagements_approved_long_ago_count_when_they_happen(app, make_user):
    """Approved 120 days ago for events in two weeks: they are this quarter's engagements."""
    adv = make_advocate(make_user, "early@example.com", name="Ear Ly")
    with time_machine.travel(T0, tick=False):
        for i in range(4):
            scheduled(adv, day(130 + i), T0)
    with time_machine.travel(T0 + timedelta(days=120), tick=False):
        talk = make_opp(title="Talk this week", event_date=day(125), mode=SelectionMode.FIRST_COME)
        assert refused(adv, talk) == (
            "The program allows at most 4 engagements in 90 days; Ear Ly has 4 in the 90 days around 6 Jul 2031."
        )
        assert fatigue.status(db.session, adv).key == "at_limit"
        assert fatigue.status(db.session, adv).engagements_90d == 4


def test_status_counts_engagements_on_their_days(app, make_user):
    booked_far = make_advocate(make_user, "booked@example.com")
    with time_machine.travel(T0, tick=False):
        for i in range(4):  # approved today, all happening in 200 days
            scheduled(booked_far, day(200 + i), T0)
        got = fatigue.status(db.session, booked_far)
        assert (got.key, got.engagements_90d) == ("available", 0)
    with time_machine.travel(T0 + timedelta(days=180), tick=False):
        got = fatigue.status(db.session, booked_far)
        assert (got.key, got.engagements_90d) == ("at_limit", 4)


# --- plain words: the advocate is told in the second person, admins in the third ---------------------------------


@pytest.mark.parametrize(
    "limit,admin_words,advocate_words",
    [
        (
            1,
            "Lim asked for at most one ask a month and has one this month.",
            "You asked for at most one ask a month and have one this month.",
        ),
        (
            3,
            "Lim asked for at most three asks a month and has three this month.",
            "You asked for at most three asks a month and have three this month.",
        ),
        (
            12,
            "Lim asked for at most 12 asks a month and has 12 this month.",
            "You asked for at most 12 asks a month and have 12 this month.",
        ),
    ],
)
def test_own_limits_in_plain_words_for_each_reader(app, make_user, admin_client, limit, admin_words, advocate_words):
    adv = make_advocate(make_user, "lim@example.com", name="Lim", max_asks_per_month=limit)
    for i in range(limit):
        db.session.add(
            Participation(
                opportunity_id=make_opp(title=f"Asked {i}", capacity=5),
                user_id=adv,
                status=ParticipationStatus.REQUESTED,
                requested_at=utcnow(),
            )
        )
    db.session.commit()
    oid = make_opp(title="One too many", capacity=50)
    assert refused(adv, oid) == admin_words
    assert refusal(adv, oid).message == advocate_words
    c = client_for(app, adv)
    detail = text_of(c.get(f"/opportunities/{oid}"))
    assert advocate_words in detail and "Lim asked" not in detail
    resp = post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}", follow_redirects=True)
    assert advocate_words in text_of(resp) and "ask(s)" not in text_of(resp)
    assert participation_of(adv, oid) is None
    # the admin adding Lim by hand reads the third person
    resp = post_form(
        admin_client,
        f"/admin/opportunities/{oid}/add",
        {"advocate": "lim@example.com"},
        page=f"/admin/opportunities/{oid}",
        follow_redirects=True,
    )
    assert f"Not added: {admin_words}" in text_of(resp)


def test_a_limit_of_zero_and_singular_policy_figures(app, make_user, admin):
    adv = make_advocate(make_user, "zero@example.com", name="Zed", max_asks_per_quarter=0)
    engaged(adv, utcnow() - timedelta(days=3), key="reference_call")
    fatigue.set_policy(db.session, {"max_engagements_90d": 1, "reference_call_gap_days": 5}, admin.id)
    db.session.commit()
    call = make_opp("reference_call", title="Call", mode=SelectionMode.FIRST_COME)
    err = refusal(adv, call)
    today = utcnow() - timedelta(days=3)
    last = today.strftime("%d %b %Y").lstrip("0")
    assert list(err.reasons) == [
        "Zed asked for no asks a quarter.",
        "The program allows at most 1 engagement in 90 days; Zed has 1.",
        f"The program keeps at least 5 days between reference calls; Zed's last one was on {last}.",
    ]
    assert err.message == (
        "You asked for no asks a quarter. The program asks nobody to take part more than 1 time "
        "in 90 days, and you already have 1 in that time. The program keeps at least 5 days "
        f"between reference calls, and your last one was on {last}."
    )
    engaged(adv, utcnow(), key="reference_call", title="A call today")
    fatigue.set_policy(db.session, {"reference_call_gap_days": 1}, admin.id)
    db.session.commit()
    assert "The program keeps at least 1 day between reference calls; Zed's last one was on" in refused(adv, call)


# --- the admins' advocate list: pages, and a filter over every advocate ----------------------------------------


def test_advocate_list_pages_of_50_and_the_fatigue_filter_covers_all(app, make_user, admin_client):
    ids = {}
    for i in range(120):  # every second advocate at their own limit (0 asks a month)
        ids[i] = make_advocate(
            make_user,
            f"adv{i:03d}@example.com",
            name=f"Adv {i:03d}",
            types=(),
            max_asks_per_month=0 if i % 2 == 0 else None,
        )
    apply_pending(db.engine)  # written straight to the database: into the index, whose statuses the filter reads

    def names(query=""):
        body = admin_client.get(f"/admin/advocates{query}").get_data(as_text=True)
        return re.findall(r'href="/admin/advocates/\d+/profile">(Adv \d{3})</a><br>', body), text_of(body)

    got, page = names()
    assert got == [f"Adv {i:03d}" for i in range(50)] and "Page 1 of 3" in page and "120 advocates" in page
    got, page = names("?page=3")
    assert got == [f"Adv {i:03d}" for i in range(100, 120)] and "Page 3 of 3" in page
    got, page = names("?fatigue=at_limit")
    assert got == [f"Adv {i:03d}" for i in range(0, 100, 2)] and "Page 1 of 2" in page
    assert "60 advocates at limit" in page
    got, page = names("?fatigue=at_limit&page=2")
    assert got == [f"Adv {i:03d}" for i in range(100, 120, 2)] and "Page 2 of 2" in page
    got, _ = names("?fatigue=under_used")
    assert got == []
    got, page = names("?page=99")  # past the end: the last page
    assert got == [f"Adv {i:03d}" for i in range(100, 120)] and "Page 3 of 3" in page
    for huge in ("9" * 30, "9" * 19):  # an offset SQLite / PostgreSQL cannot hold was a 500
        got, page = names(f"?page={huge}")
        assert got == [f"Adv {i:03d}" for i in range(100, 120)] and "Page 3 of 3" in page
        got, page = names(f"?fatigue=at_limit&page={huge}")
        assert "Page 2 of 2" in page
    assert names("?page=abc")[0][:1] == ["Adv 000"]
    # the filter is computed over every advocate, in chunks, whatever the chunk size
    from sqlalchemy import select as sa_select

    q = sa_select(User.id).where(User.role == Role.ADVOCATE).order_by(User.name, User.id)
    assert fatigue.ids_with_status(db.session, "at_limit", q, chunk=7) == [ids[i] for i in range(0, 120, 2)]


# --- a policy change reaches the search index ---------------------------------------------------------------------


def test_a_policy_change_queues_every_active_advocate_for_the_index(app, make_user, admin_client, runner):
    from search.indexing import apply_pending

    two = make_advocate(make_user, "two@example.com", name="Tess Two")
    none = make_advocate(make_user, "none@example.com", name="Nell None")
    suspended = make_advocate(make_user, "gone@example.com", name="Sus Pended")
    db.session.query(User).filter_by(id=suspended).update({"status": "suspended"})
    db.session.commit()
    engaged(two, utcnow() - timedelta(days=5))
    engaged(two, utcnow() - timedelta(days=4))
    apply_pending(db.engine)
    assert pending_rows() == []
    assert indexed(two)["fatigue"] == "available"

    post_form(admin_client, "/admin/settings", settings_form(max_engagements_90d="2", reference_call_gap_days="30"))
    queued = {r.doc_id for r in pending_rows() if r.doc_type == "advocates"}
    assert queued == {two, none}
    apply_pending(db.engine)  # what the next index writer, or the `flask search sync` cron, does
    assert indexed(two)["fatigue"] == "at_limit" and indexed(none)["fatigue"] != "at_limit"
    assert [h.user.id for h in find(fatigue="at_limit", include_unavailable=True).hits] == [two]

    # saving the same policy again changes nothing and queues nothing
    post_form(admin_client, "/admin/settings", settings_form(max_engagements_90d="2", reference_call_gap_days="30"))
    assert pending_rows() == []


# --- the advocate's own calendar day ---------------------------------------------------------------------------------


AUCKLAND_EVENING_UTC = datetime(2031, 3, 5, 20, 0, tzinfo=UTC)  # 09:00 on 6 March in Auckland


def test_a_blackout_counts_on_the_advocates_own_day_everywhere(app, make_user):
    """A one-day blackout on the advocate's 6 March: at 20:00 UTC on the 5th it is already the 6th in
    Auckland. Their own page says "in a blackout"; requests, the status admins see and search agree
    (they used to use UTC's date and let the ask through)."""
    kiwi = make_advocate(
        make_user, "kiwi@example.com", timezone="Pacific/Auckland", blackouts=[(date(2031, 3, 6), date(2031, 3, 6))]
    )
    utc = make_advocate(make_user, "utc@example.com", timezone="UTC", blackouts=[(date(2031, 3, 6), date(2031, 3, 6))])
    with time_machine.travel(AUCKLAND_EVENING_UTC, tick=False):
        oid = make_opp("speaking", title="Evening panel")
        assert fatigue.status(db.session, kiwi).key == "unavailable"
        assert fatigue.status(db.session, utc).key != "unavailable"  # still the 5th in UTC
        assert set(fatigue.unavailable_on(db.session)) >= {kiwi}
        assert utc not in set(fatigue.unavailable_on(db.session))
        with pytest.raises(DomainError) as err:
            ask(kiwi, oid)
        # refused as an advocate in UTC is on their own blackout day (eligibility, now on the local date)
        assert str(err.value) == "It falls in your blackout from 6 Mar 2031 to 6 Mar 2031."
        db.session.rollback()
        assert participation_of(kiwi, oid) is None
        assert ask(utc, oid).status in (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED)


def test_a_pause_lasts_to_the_end_of_the_advocates_own_day(app, make_user):
    """Paused until 5 March in Honolulu: at 01:00 UTC on the 6th it is still 15:00 on the 5th there."""
    late = datetime(2031, 3, 6, 1, 0, tzinfo=UTC)
    hawaii = make_advocate(make_user, "aloha@example.com", timezone="Pacific/Honolulu", paused_until=date(2031, 3, 5))
    with time_machine.travel(late, tick=False):
        oid = make_opp("speaking", title="Morning panel")
        assert fatigue.status(db.session, hawaii).key == "unavailable"
        assert hawaii in set(fatigue.unavailable_on(db.session))
        with pytest.raises(DomainError) as err:  # as an advocate in UTC is refused on their last paused day
            ask(hawaii, oid)
        assert str(err.value) == "You have paused all asks until 5 Mar 2031."
        db.session.rollback()
        assert participation_of(hawaii, oid) is None
    with time_machine.travel(late + timedelta(hours=10), tick=False):  # 01:00 on the 6th in Honolulu
        assert fatigue.status(db.session, hawaii).key != "unavailable"
        assert hawaii not in set(fatigue.unavailable_on(db.session))


def _feed_titles(uid) -> list[str]:
    from portal.services import opportunities

    return [m.opportunity.title for m in opportunities.feed(db.session, user(uid))]


def test_an_auckland_pause_ends_with_the_advocates_own_day(app, make_user):
    """Paused until 5 March in Auckland: at 20:00 UTC on the 5th it is already 09:00 on the 6th there.
    The feed used to show nothing and a request was refused as paused (UTC's date)."""
    kiwi = make_advocate(
        make_user, "kiwi.pause@example.com", timezone="Pacific/Auckland", paused_until=date(2031, 3, 5)
    )
    with time_machine.travel(AUCKLAND_EVENING_UTC - timedelta(hours=12), tick=False):  # 21:00 on the 5th there
        make_opp("speaking", title="Panel in the morning", mode=SelectionMode.FIRST_COME)
        assert _feed_titles(kiwi) == []
    with time_machine.travel(AUCKLAND_EVENING_UTC, tick=False):
        oid = make_opp("speaking", title="Evening panel", mode=SelectionMode.FIRST_COME)
        assert sorted(_feed_titles(kiwi)) == ["Evening panel", "Panel in the morning"]
        assert fatigue.status(db.session, kiwi).key != "unavailable"
        c = client_for(app, kiwi)
        assert "Evening panel" in text_of(c.get("/opportunities"))
        detail = text_of(c.get(f"/opportunities/{oid}"))
        assert "paused all asks" not in detail and "I'm in" in detail
        resp = post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}", follow_redirects=True)
        assert "paused all asks" not in text_of(resp)
        assert participation_of(kiwi, oid).status == ParticipationStatus.APPROVED


def test_an_auckland_blackout_of_yesterday_is_over(app, make_user):
    """A one-day blackout on 5 March in Auckland is over at 20:00 UTC on the 5th (their 6th)."""
    kiwi = make_advocate(
        make_user,
        "kiwi.away@example.com",
        timezone="Pacific/Auckland",
        blackouts=[(date(2031, 3, 5), date(2031, 3, 5))],
    )
    with time_machine.travel(AUCKLAND_EVENING_UTC - timedelta(hours=12), tick=False):  # still the 5th there
        make_opp("speaking", title="Undated talk")
        assert _feed_titles(kiwi) == []
    with time_machine.travel(AUCKLAND_EVENING_UTC, tick=False):
        oid = make_opp("speaking", title="Undated panel", mode=SelectionMode.FIRST_COME)
        assert sorted(_feed_titles(kiwi)) == ["Undated panel", "Undated talk"]
        assert fatigue.status(db.session, kiwi).key != "unavailable"
        c = client_for(app, kiwi)
        page = text_of(c.get("/opportunities"))
        assert "Undated panel" in page and "Undated talk" in page
        assert "blackout" not in text_of(c.get(f"/opportunities/{oid}"))
        resp = post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}", follow_redirects=True)
        assert "blackout" not in text_of(resp)
        assert participation_of(kiwi, oid).status == ParticipationStatus.APPROVED


def test_own_ask_limits_count_from_the_advocates_own_first_of_the_month(app, make_user):
    """Auckland is 13 hours ahead in March: its April (and second quarter) begins at 11:00 UTC on
    31 March. The status admins see and the request check both count asks from the advocate's own
    midnight; the status used to count from UTC's 1st (and the request check from UTC midnight of
    the advocate's 1st, missing their first hours of the month)."""

    kiwi = make_advocate(
        make_user, "kiwi.limit@example.com", name="Kiri", timezone="Pacific/Auckland", max_asks_per_month=1
    )
    kiwi_q = make_advocate(
        make_user, "kiwi.quarter@example.com", name="Kara", timezone="Pacific/Auckland", max_asks_per_quarter=1
    )
    london = make_advocate(make_user, "utc.limit@example.com", name="Lon", timezone="UTC", max_asks_per_month=1)
    hawaii = make_advocate(
        make_user, "aloha.limit@example.com", name="Hana", timezone="Pacific/Honolulu", max_asks_per_quarter=1
    )
    opps = [make_opp(title=f"Ask {i}", capacity=10) for i in range(4)]  # selection: asks, not engagements
    ids = [kiwi, kiwi_q, london, hawaii]

    def keys():
        got = fatigue.statuses(db.session, ids)
        return [got[uid].key for uid in ids]

    # 05:00 UTC on 1 January is still 31 December in Honolulu: last quarter's ask for Hana.
    with time_machine.travel(datetime(2031, 1, 1, 5, 0, tzinfo=UTC), tick=False):
        ask(hawaii, opps[0])
    with time_machine.travel(datetime(2031, 3, 31, 9, 0, tzinfo=UTC), tick=False):  # 22:00 on 31 Mar there
        for uid in (kiwi, kiwi_q, london):
            ask(uid, opps[0])
        # no ask yet this quarter for Hana, one left: near the limit (UTC's quarter counted December's ask)
        assert keys() == ["at_limit", "at_limit", "at_limit", "near_limit"]
        assert refused(kiwi, opps[1]) == "Kiri asked for at most one ask a month and has one this month."
        assert ask(hawaii, opps[1]).status == ParticipationStatus.REQUESTED  # Hana's first ask of the quarter
    with time_machine.travel(datetime(2031, 3, 31, 11, 30, tzinfo=UTC), tick=False):  # 00:30 on 1 Apr
        with recorded_sql() as sql:
            assert keys() == ["near_limit", "near_limit", "at_limit", "at_limit"]  # a new month for the Kiwis
        assert sum("from participations" in s for s in sql) <= 3  # one query for every advocate's asks
        assert ask(kiwi, opps[1]).status == ParticipationStatus.REQUESTED
        assert ask(kiwi_q, opps[1]).status == ParticipationStatus.REQUESTED
        assert keys() == ["at_limit", "at_limit", "at_limit", "at_limit"]
    with time_machine.travel(datetime(2031, 3, 31, 20, 0, tzinfo=UTC), tick=False):  # 09:00 on 1 Apr
        assert keys() == ["at_limit", "at_limit", "at_limit", "at_limit"]
        assert refused(kiwi, opps[2]) == "Kiri asked for at most one ask a month and has one this month."
        assert refused(kiwi_q, opps[2]) == "Kara asked for at most one ask a quarter and has one this quarter."
    with time_machine.travel(datetime(2031, 4, 1, 0, 30, tzinfo=UTC), tick=False):  # UTC's April
        assert keys() == ["at_limit", "at_limit", "near_limit", "at_limit"]
        assert ask(london, opps[2]).status == ParticipationStatus.REQUESTED
