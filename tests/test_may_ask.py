"""May this advocate be asked? One answer (portal.services.fatigue.may_ask, and
opportunities.may_take_part for an opportunity), with machine-readable reasons, that every caller
uses alike: the feed, a request, an approval, an admin's addition, the fatigue status, search and
the digest."""

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from portal.extensions import db
from portal.models import Digest, DigestDelivery, Participation, ParticipationStatus, Status, User
from portal.services import digest, fatigue, opportunities, participation
from tests.support import (
    atype,
    client_for,
    engaged,
    make_advocate,
    make_opp,
    participation_of,
    post_form,
    text_of,
    user,
)

T0 = datetime(2031, 3, 12, 10, 0, tzinfo=UTC)  # mid-month, mid-quarter
ROOT = Path(__file__).resolve().parent.parent


def codes(user_id: int, key: str = "speaking", on: date | None = None, **kw) -> list[str]:
    return fatigue.may_ask(db.session, user_id, atype(key), on, **kw).codes


def test_each_rule_has_its_own_reason_code(app, make_user):
    with time_machine.travel(T0, tick=False):
        fine = make_advocate(make_user, "fine@example.com")
        assert codes(fine) == [] and fatigue.may_ask(db.session, fine, atype("speaking")).allowed

        gone = make_advocate(make_user, "gone@example.com")
        db.session.get(User, gone).status = Status.SUSPENDED
        db.session.commit()
        assert codes(gone) == [fatigue.NOT_ACTIVE]

        picky = make_advocate(make_user, "picky@example.com", types=("review",))
        assert codes(picky) == [fatigue.NOT_OPTED_IN] and codes(picky, "review") == []

        paused = make_advocate(make_user, "paused@example.com", paused_until=T0.date() + timedelta(days=3))
        # A pause holds every ask made while it lasts, also one for an activity after it.
        assert codes(paused) == codes(paused, on=T0.date() + timedelta(days=60)) == [fatigue.PAUSED]

        start = T0.date() + timedelta(days=20)
        away = make_advocate(make_user, "away@example.com", blackouts=[(start, start + timedelta(days=3))])
        assert codes(away, on=start + timedelta(days=3)) == [fatigue.BLACKOUT]
        assert codes(away) == codes(away, on=start + timedelta(days=4)) == []

        monthly = make_advocate(make_user, "monthly@example.com", max_asks_per_month=0)
        quarterly = make_advocate(make_user, "quarterly@example.com", max_asks_per_quarter=0)
        assert codes(monthly) == [fatigue.MONTH_LIMIT] and codes(quarterly) == [fatigue.QUARTER_LIMIT]

        busy = make_advocate(make_user, "busy@example.com")
        for days_ago in (5, 10, 15, 20):
            engaged(busy, T0 - timedelta(days=days_ago))
        assert codes(busy) == [fatigue.PROGRAM_LIMIT]
        assert codes(busy, on=T0.date() + timedelta(days=80)) == []  # a window that holds none of them

        caller = make_advocate(make_user, "caller@example.com")
        engaged(caller, T0 - timedelta(days=10), "reference_call")
        assert codes(caller, "reference_call") == [fatigue.REFERENCE_CALL_GAP]
        assert codes(caller, "speaking") == []  # the gap is between reference calls only


def test_deciding_the_advocates_own_request_does_not_count_it_again(app, make_user):
    """counts_as_ask=False (an approval): opt-in and own ask limits were checked when they asked; being
    away and the program's limits still hold."""
    with time_machine.travel(T0, tick=False):
        adv = make_advocate(make_user, "own@example.com", types=(), max_asks_per_month=0)
        assert codes(adv) == [fatigue.NOT_OPTED_IN, fatigue.MONTH_LIMIT]
        assert codes(adv, counts_as_ask=False) == []
        db.session.get(User, adv).profile.paused_until = T0.date()
        db.session.commit()
        assert codes(adv, counts_as_ask=False) == [fatigue.PAUSED]


def test_unavailable_on_a_day_and_today(app, make_user):
    with time_machine.travel(T0, tick=False):
        start = T0.date() + timedelta(days=10)
        paused = make_advocate(make_user, "p@example.com", paused_until=T0.date())
        away = make_advocate(make_user, "a@example.com", blackouts=[(start, start)])
        here = make_advocate(make_user, "h@example.com")
        everyone = fatigue.unavailable_on(db.session)
        assert everyone.get(paused) == fatigue.PAUSED and away not in everyone and here not in everyone
        assert fatigue.unavailable_on(db.session, [away, here], on_date=start) == {away: fatigue.BLACKOUT}
        assert fatigue.unavailable_on(db.session, [away, here, paused], on_date=start) == {
            away: fatigue.BLACKOUT,
            paused: fatigue.PAUSED,
        }
        assert fatigue.unavailable_on(db.session, []) == {}


def test_the_status_says_what_may_ask_answers_today(app, make_user):
    """ "Unavailable" exactly when an undated ask today is refused as paused or away, "at limit" exactly
    when it is refused by a limit (the status and the rules used to compute each on their own)."""
    with time_machine.travel(T0, tick=False):
        people = {
            "paused": make_advocate(make_user, "s1@example.com", paused_until=T0.date() + timedelta(days=1)),
            "blackout": make_advocate(make_user, "s2@example.com", blackouts=[(T0.date(), T0.date())]),
            "month": make_advocate(make_user, "s3@example.com", max_asks_per_month=1),
            "program": make_advocate(make_user, "s4@example.com"),
            "fine": make_advocate(make_user, "s5@example.com"),
            # 23:30 in Auckland on the 12th's evening UTC is the 13th: a blackout on the 13th there
            "kiwi": make_advocate(
                make_user,
                "s6@example.com",
                timezone="Pacific/Auckland",
                blackouts=[(T0.date() + timedelta(days=1), T0.date() + timedelta(days=1))],
            ),
        }
        db.session.add(
            Participation(
                opportunity_id=make_opp(title="Asked this month"),
                user_id=people["month"],
                status=ParticipationStatus.REQUESTED,
                requested_at=T0 - timedelta(days=2),
            )
        )
        db.session.commit()
        for days_ago in (1, 2, 3, 4):
            engaged(people["program"], T0 - timedelta(days=days_ago))
    for moment in (T0, T0.replace(hour=22)):
        with time_machine.travel(moment, tick=False):
            status = fatigue.statuses(db.session, list(people.values()))
            for name, uid in people.items():
                got = set(codes(uid))
                expected = (
                    "unavailable"
                    if got & fatigue.AWAY
                    else "at_limit"
                    if got & fatigue.LIMITS
                    else status[uid].key  # near limit, available, under-used: not refusals
                )
                assert status[uid].key == expected, (name, moment, got)
                assert (status[uid].key in fatigue.REFUSED_STATUSES) == bool(got), (name, moment)
            assert status[people["kiwi"]].key == ("unavailable" if moment.hour == 22 else "available")


@pytest.fixture
def scenario(app, make_user):
    """Four advocates and one open opportunity: who may be asked, and why not."""
    with time_machine.travel(T0, tick=False):
        people = {
            "fine": make_advocate(make_user, "c1@example.com", name="Fran Fine", digest=Digest.WEEKLY),
            "paused": make_advocate(
                make_user,
                "c2@example.com",
                name="Pete Paused",
                digest=Digest.WEEKLY,
                paused_until=T0.date() + timedelta(days=5),
            ),
            "month": make_advocate(
                make_user, "c3@example.com", name="Mo Monthly", digest=Digest.WEEKLY, max_asks_per_month=0
            ),
            "busy": make_advocate(make_user, "c4@example.com", name="Bea Busy", digest=Digest.WEEKLY),
        }
        for days_ago in (1, 2, 3, 4):
            engaged(people["busy"], T0 - timedelta(days=days_ago))
        oid = make_opp(title="Customer panel", capacity=10, opened_at=T0 - timedelta(hours=1))
    expected = {
        "fine": [],
        "paused": [fatigue.PAUSED],
        "month": [fatigue.MONTH_LIMIT],
        "busy": [fatigue.PROGRAM_LIMIT],
    }
    return people, oid, expected


def test_the_feed_the_request_and_the_admins_addition_agree(app, scenario, admin, runner):
    people, oid, expected = scenario
    with time_machine.travel(T0, tick=False):
        opp = db.session.get(opportunities.Opportunity, oid)
        for name, uid in people.items():
            decision = opportunities.may_take_part(db.session, user(uid), db.session.get(type(opp), oid))
            assert decision.codes == expected[name], name
            # the feed offers what may be asked; a limit holds it back with the reason, being away hides it
            offered = [m.opportunity.id for m in opportunities.feed(db.session, user(uid))]
            assert (oid in offered) == decision.allowed, name
            shown, _ = opportunities.feed_with_limits(db.session, user(uid))
            held = {m.opportunity.id: m.blocked for m in shown}
            if decision.has(fatigue.AWAY):
                assert oid not in held, name
            else:
                assert held[oid] == decision.for_advocate(), name
            if decision.allowed:
                continue
            # the advocate's own request: refused with the same reasons, in their words
            with pytest.raises(fatigue.AskRefused) as err:
                participation.request(db.session, user(uid), oid)
            db.session.rollback()
            assert err.value.decision.codes == expected[name]
            assert err.value.message == " ".join(decision.for_advocate())
            # an admin adding them: the same reasons, in the admins' words, unless overridden
            with pytest.raises(fatigue.AskRefused) as err:
                participation.add_by_admin(db.session, oid, uid, user(admin.id))
            db.session.rollback()
            assert err.value.decision.codes == expected[name]
            assert err.value.reasons == decision.for_admin()
            assert participation_of(uid, oid) is None


def test_search_and_the_digest_agree(app, scenario, runner, staff):
    people, oid, expected = scenario
    with time_machine.travel(T0, tick=False):
        assert runner.invoke(args=["search", "reindex"]).exit_code == 0
        page = text_of(client_for(app, staff.email).get("/search/advocates"))
        for name, uid in people.items():
            # search hides whom an undated ask today would refuse (this opportunity is undated)
            assert (user(uid).name in page) == (expected[name] == []), name
        sent, _ = digest.send(db.session, "weekly", now=T0)
        db.session.commit()
        got = set(db.session.scalars(db.select(DigestDelivery.user_id).where(DigestDelivery.period == "weekly")))
        assert got == {uid for name, uid in people.items() if not expected[name]} and sent == 1


def test_the_detail_page_and_a_direct_post_tell_the_same_reasons(app, scenario):
    people, oid, expected = scenario
    with time_machine.travel(T0, tick=False):
        for name in ("paused", "month"):
            c = client_for(app, people[name])
            detail = text_of(c.get(f"/opportunities/{oid}"))
            words = opportunities.may_take_part(
                db.session, user(people[name]), db.session.get(opportunities.Opportunity, oid)
            ).for_advocate()
            assert all(w in detail for w in words) and "I'm in" not in detail
            resp = post_form(c, f"/opportunities/{oid}/request", {}, page="/opportunities", follow_redirects=True)
            assert all(w in text_of(resp) for w in words)
            assert participation_of(people[name], oid) is None


# --- one place -----------------------------------------------------------------------------------------------

RULE_PATTERNS = {
    "a pause compared with a day": re.compile(r"paused_until\s*(>=|>|<=)\s*\w"),
    "a blackout compared with a day": re.compile(r"starts_on\s*<=\s*[\w.]+\s*<=\s*[\w.]*ends_on|ends_on\s*>=\s*\w"),
    "a limit compared with what is used": re.compile(r"used\s*(\+\s*1\s*>|>=)\s*\w*limit"),
}
# Not the rule, but checks of what an advocate enters (a pause must not end in the past) and the
# advocate's own list of blackouts split into upcoming and past.
ALLOWED = {
    ("portal/services/profiles.py", "a pause compared with a day"): ("paused_until < today", "paused_until > today +"),
    ("portal/services/profiles.py", "a blackout compared with a day"): ("b.ends_on >= today",),
}


def test_the_rules_are_written_once():
    """Pauses, blackouts and limits are compared with days and counts only in portal/services/fatigue.py."""
    found = []
    for folder in ("portal", "admin", "search", "staff"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("portal/services/fatigue.py",) or rel.startswith("portal/models/"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                for what, pattern in RULE_PATTERNS.items():
                    if pattern.search(line) and not any(ok in line for ok in ALLOWED.get((rel, what), ())):
                        found.append(f"{rel}:{n}: {what}: {line.strip()}")
    assert found == []


def test_reason_codes_are_distinct_and_grouped():
    fit = opportunities.NOT_FOR_THEM
    assert fatigue.AWAY.isdisjoint(fatigue.LIMITS) and fit.isdisjoint(fatigue.AWAY | fatigue.LIMITS)
    assert {fatigue.NOT_ACTIVE, fatigue.NOT_OPTED_IN} <= fit


def test_deciding_many_at_once_agrees_with_may_ask(app, make_user):
    """fatigue.decide_many (a fixed number of queries for any number of advocates) gives each advocate
    may_ask's decision, reasons and words alike, for dated and undated asks of either kind, in any zone."""
    with time_machine.travel(T0, tick=False):
        soon = T0.date() + timedelta(days=12)
        people = [
            make_advocate(make_user, "m1@example.com"),
            make_advocate(make_user, "m2@example.com", types=("review",)),
            make_advocate(make_user, "m3@example.com", paused_until=T0.date() + timedelta(days=2)),
            make_advocate(make_user, "m4@example.com", blackouts=[(soon, soon), (T0.date(), T0.date())]),
            make_advocate(make_user, "m5@example.com", max_asks_per_month=1, max_asks_per_quarter=1),
            make_advocate(make_user, "m6@example.com", max_asks_per_quarter=2, timezone="Pacific/Auckland"),
            make_advocate(make_user, "m7@example.com"),
            make_advocate(make_user, "m8@example.com", timezone="America/Los_Angeles"),
            make_advocate(make_user, "m9@example.com", types=()),
        ]
        db.session.get(User, people[8]).status = Status.SUSPENDED
        for uid, days_ago in ((people[4], 3), (people[5], 40), (people[5], 1)):
            db.session.add(
                Participation(
                    opportunity_id=make_opp(title=f"Asked {uid} {days_ago}"),
                    user_id=uid,
                    status=ParticipationStatus.REQUESTED,
                    requested_at=T0 - timedelta(days=days_ago),
                )
            )
        db.session.commit()
        for days_ago in (2, 9, 30, 60):
            engaged(people[6], T0 - timedelta(days=days_ago))
        engaged(people[7], T0 - timedelta(days=20), "reference_call")
        engaged(people[7], T0 + timedelta(days=25), "reference_call")
        ids = [*people, 10**9]  # an id without an account is left out
        seen = set()
        for key, on in (
            ("reference_call", soon),
            ("reference_call", None),
            ("speaking", T0.date() + timedelta(days=70)),
        ):
            many = fatigue.decide_many(db.session, ids, atype(key), on, chunk=4)
            assert set(many) == set(people)
            for uid in people:
                one = fatigue.may_ask(db.session, uid, atype(key), on)
                assert many[uid].codes == one.codes and many[uid].for_admin() == one.for_admin(), (uid, key, on)
                assert many[uid].for_advocate() == one.for_advocate()
                seen.update(one.codes)
        assert seen >= {
            fatigue.NOT_ACTIVE,
            fatigue.NOT_OPTED_IN,
            fatigue.PAUSED,
            fatigue.BLACKOUT,
            fatigue.MONTH_LIMIT,
            fatigue.QUARTER_LIMIT,
            fatigue.PROGRAM_LIMIT,
            fatigue.REFERENCE_CALL_GAP,
        }
        assert fatigue.decide_many(db.session, [], atype("speaking")) == {}
