"""The program dashboard (issue 14): every number against a program built by hand (dates chosen around
the edges of a quarter), an empty program, period edges, a changed activity value, charts with tables."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select, update

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Industry,
    Invitation,
    Nomination,
    NominationStatus,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Redemption,
    RedemptionStatus,
    ReferenceOutcome,
    ReferenceStatus,
    Region,
    ReportFigures,
    Role,
    SizeBand,
    Status,
    User,
    utcnow,
)
from portal.services import reporting, rewards
from search.indexing import apply_pending
from tests.support import (
    activity_type_id,
    audits,
    csrf_from,
    give,
    make_reward,
    recorded_sql,
    reference_request_record,
    run_threads,
)

Q2 = reporting.Period("quarter", date(2025, 4, 1), date(2025, 7, 1))


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _approved(uid: int, when: datetime | None, referred_by: int | None = None) -> None:
    db.session.execute(update(User).where(User.id == uid).values(approved_at=when, referred_by_id=referred_by))
    db.session.commit()


def _part(uid: int, key: str, status: ParticipationStatus, requested: datetime, completed: datetime | None = None):
    opp = Opportunity(
        activity_type_id=activity_type_id(key), title=f"{key} {requested:%Y%m%d%H%M%S}", status=OpportunityStatus.CLOSED
    )
    db.session.add(opp)
    db.session.flush()
    engaged = status in (ParticipationStatus.COMPLETED, ParticipationStatus.APPROVED, ParticipationStatus.NO_SHOW)
    db.session.add(
        Participation(
            opportunity_id=opp.id,
            user_id=uid,
            status=status,
            requested_at=requested,
            engaged_at=requested if engaged else None,
            completed_at=completed,
        )
    )
    db.session.commit()


@pytest.fixture
def program(app, make_user, admin):
    """Five advocates; Q2 2025 (1 April - 30 June, UTC) holds, by hand:

    - new advocates: a1 (approved at the first second of Q2) and a2 (the last second, given in UTC+2,
      referred by a1): 2, of which 1 referred; a3 (the last second of Q1) is the previous quarter's one; a4
      (the first second of Q3) counts in neither; a5 joined today;
    - requested in Q2: a1 speaking (completed 10 April), a1 review (completed 5 May), a2 speaking (no-show),
      a2 review (declined, requested the last second of Q2): 4; completion 2/3, no-show 1/3, decline 1/4;
      a3 speaking in Q1 (completed 31 March 23:59:59); a4 review requested the first second of Q3;
    - values: speaking 500 from 1 Jan 2025, 800 from 15 April (after a1's call: it keeps 500); review 150
      from 1 April: Q2 delivered 500 + 150 = 650 (April 500, May 150, June 0); Q1 500;
    - points: earned 100 (2 April) + 50 (30 June 23:59:59) in Q2, 30 in Q1 (31 March 23:59:59); a reward of
      40 redeemed on 3 May and fulfilled on 4 May (a1 completed one activity in the 90 days before, one after);
    - now: a1 and a5 fresh, a2-a4 stale (3 of 5); fatigue: a4 paused (unavailable), a5 new (available),
      a1-a3 under-used (no engagement in 180 days)."""
    ids = {}
    for name in ("a1", "a2", "a3", "a4", "a5"):
        ids[name] = make_user(email=f"{name}@example.com", name=f"Advocate {name.upper()}").id
    a1, a2, a3, a4, a5 = (ids[k] for k in ("a1", "a2", "a3", "a4", "a5"))
    _approved(a1, at(2025, 4, 1, 0, 0, 0))
    _approved(a2, datetime(2025, 7, 1, 1, 59, 59, tzinfo=timezone(timedelta(hours=2))), referred_by=a1)
    _approved(a3, at(2025, 3, 31, 23, 59, 59))
    _approved(a4, at(2025, 7, 1, 0, 0, 0))
    now = utcnow()
    db.session.add_all(
        [
            AdvocateProfile(user_id=a1, confirmed_at=now),
            AdvocateProfile(user_id=a4, paused_until=(now + timedelta(days=30)).date()),
        ]
    )
    db.session.commit()
    C, N, D = ParticipationStatus.COMPLETED, ParticipationStatus.NO_SHOW, ParticipationStatus.DECLINED
    _part(a1, "speaking", C, at(2025, 4, 2, 9), at(2025, 4, 10, 12))
    _part(a1, "review", C, at(2025, 5, 1, 9), at(2025, 5, 5, 12))
    _part(a2, "speaking", N, at(2025, 5, 10, 9))
    _part(a2, "review", D, at(2025, 6, 30, 23, 59, 59))
    _part(a3, "speaking", C, at(2025, 3, 30, 9), at(2025, 3, 31, 23, 59, 59))
    _part(a4, "review", ParticipationStatus.REQUESTED, at(2025, 7, 1, 0, 0, 0))
    speaking, review = activity_type_id("speaking"), activity_type_id("review")
    reporting.set_value(db.session, speaking, 500, admin.id, today=date(2025, 1, 1))
    reporting.set_value(db.session, speaking, 800, admin.id, today=date(2025, 4, 15))
    reporting.set_value(db.session, review, 150, admin.id, today=date(2025, 4, 1))
    db.session.commit()
    for when, amount in ((at(2025, 4, 2), 100), (at(2025, 6, 30, 23, 59, 59), 50), (at(2025, 3, 31, 23, 59, 59), 30)):
        with time_machine.travel(when, tick=False):
            give(a1, amount)
    reward_id = make_reward(cost=40, name="Mug")
    with time_machine.travel(at(2025, 5, 3), tick=False):
        order, _ = rewards.redeem(db.session, db.session.get(User, a1), reward_id, "mug")
        db.session.commit()
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == order.id)
        .values(status=RedemptionStatus.FULFILLED, fulfilled_at=at(2025, 5, 4))
    )
    db.session.commit()
    apply_pending(db.engine)  # the index the fatigue distribution reads, as each change leaves it
    return ids


def test_a_quarter_holds_its_first_and_last_second(app):
    q = reporting.period_for("quarter", date(2025, 6, 30))
    assert (q.start, q.end, q.label) == (date(2025, 4, 1), date(2025, 7, 1), "Q2 2025")
    assert q.start_at == at(2025, 4, 1) and q.end_at == at(2025, 7, 1)  # [start, end): 30 June 23:59:59 is in
    assert q.previous() == reporting.Period("quarter", date(2025, 1, 1), date(2025, 4, 1))
    assert reporting.period_for("month", date(2025, 3, 31)).previous().start == date(2025, 2, 1)
    assert reporting.period_for("year", date(2024, 2, 29)).previous() == reporting.Period(
        "year", date(2023, 1, 1), date(2024, 1, 1)
    )
    custom = reporting.period_for("custom", date(2025, 1, 1), date(2025, 1, 10), date(2025, 1, 19))
    assert (custom.days, custom.previous().start, custom.previous().end) == (10, date(2024, 12, 31), date(2025, 1, 10))
    assert custom.months() == ["2025-01"] and q.months() == ["2025-04", "2025-05", "2025-06"]


def test_every_number_of_the_dashboard_against_the_hand_built_program(app, program):
    board = reporting.dashboard(db.session, Q2)
    adv, before = board.advocates, board.advocates_before
    assert (adv.new, adv.self_registered, adv.referred, adv.engaged) == (2, 2, 1, 1)
    assert (adv.nominated, adv.imported) == (0, 0)
    assert (before.new, before.referred, before.engaged) == (1, 0, 1)
    p, b = board.participations, board.participations_before
    assert p.requested == 4 and p.by_status == {"completed": 2, "no_show": 1, "declined": 1}
    assert (p.completion_rate, p.no_show_rate, p.decline_rate) == (2 / 3, 1 / 3, 1 / 4)
    assert p.completed == 2 and p.value == 650 and p.value_by_month == {"2025-04": 500, "2025-05": 150, "2025-06": 0}
    speaking, review = activity_type_id("speaking"), activity_type_id("review")
    assert p.by_month == {"2025-04": {speaking: 1}, "2025-05": {review: 1}, "2025-06": {}}
    by_type = {t.type_id: (t.requested, t.completed, t.value) for t in p.by_type}
    assert by_type[speaking] == (2, 1, 500) and by_type[review] == (2, 1, 150)
    assert (b.requested, b.completed, b.value, b.completion_rate, b.decline_rate) == (1, 1, 500, 1.0, 0.0)
    assert (board.points.earned, board.points.redeemed, board.points.rewards_fulfilled) == (150, 40, 1)
    assert (board.points_before.earned, board.points_before.redeemed, board.points_before.rewards_fulfilled) == (
        30,
        0,
        0,
    )
    assert [(t.name, t.completed) for t in board.top] == [("Advocate A1", 2)]
    # The mug ordered on 3 May: a1's call of 10 April before it, the review of 5 May after it.
    assert [(r.name, r.orders, r.before, r.after) for r in board.reward_return] == [("Mug", 1, 1, 1)]
    assert reporting.reward_return(db.session, Q2.previous()) == []
    assert (board.membership.active, board.membership.stale, board.membership.stale_share) == (5, 3, 0.6)
    assert board.fatigue == {"under_used": 3, "available": 1, "near_limit": 0, "at_limit": 0, "unavailable": 1}
    assert board.reference_requests == reporting.ReferenceRequests(0, 0, None) and board.top_nominators == []
    assert board.influenced_revenue.deals == 0 and board.influenced_revenue.with_reference.rate is None


def test_nominations_imports_and_reference_requests_against_hand_built_records(app, make_user, admin, admin_client):
    """New advocates by the invitation they joined through, the nominators whose nominees joined, reference
    requests received and fulfilled with the median days, influenced revenue and the two win rates."""
    staff_a = make_user(email="rep.a@example.com", name="Rep A", role=Role.STAFF)
    staff_b = make_user(email="rep.b@example.com", name="Rep B", role=Role.STAFF)
    joined = [make_user(email=f"n{i}@example.com").id for i in range(4)]
    for uid, when in zip(joined, (at(2025, 4, 1), at(2025, 6, 30, 23, 59, 59), at(2025, 7, 1), at(2025, 5, 5))):
        _approved(uid, when)
    # n0, n1 (in Q2) and n2 (1 July: the next quarter) through nominations; n3 through an import.
    for i, (uid, source) in enumerate(zip(joined, ("nomination", "nomination", "nomination", "import"))):
        db.session.add(
            Invitation(
                email=f"n{i}@example.com",
                source=source,
                token_hash=f"{i:064d}",
                expires_at=at(2025, 12, 1),
                accepted_at=at(2025, 4, 1),
                accepted_user_id=uid,
            )
        )
    for nominator, uid, when in (
        (staff_b.id, joined[0], at(2025, 4, 1)),
        (staff_b.id, joined[1], at(2025, 6, 30)),
        (staff_a.id, joined[2], at(2025, 7, 1)),
        (staff_a.id, None, at(2025, 5, 1)),
    ):
        db.session.add(
            Nomination(
                nominator_id=nominator,
                email=f"x{when:%m%d}{nominator}@example.com",
                name="Nominee",
                status=NominationStatus.JOINED if uid else NominationStatus.INVITED,
                joined_user_id=uid,
                joined_at=when if uid else None,
            )
        )
    health, emea, huge = Industry(name="Healthcare test"), Region(name="EMEA test"), SizeBand(name="Huge test")
    db.session.add_all([health, emea, huge])
    db.session.flush()
    rep = staff_a.id
    # Received in Q2: four (fulfilled in 2 days, in 5 days, never, never); one from March fulfilled in April (10 days).
    reference_request_record(
        "reference_call",
        ReferenceStatus.COMPLETED,
        at(2025, 4, 2),
        rep,
        fulfilled_at=at(2025, 4, 4),
        outcome=ReferenceOutcome.WON,
        final_amount=90_000,
        deal_amount=100_000,
        outcome_at=at(2025, 5, 1),
        currency="EUR",
        industry_id=health.id,
        region_id=emea.id,
        size_band_id=huge.id,
    )
    reference_request_record(
        "case_study",
        ReferenceStatus.COMPLETED,
        at(2025, 4, 10),
        rep,
        fulfilled_at=at(2025, 4, 15),
        outcome=ReferenceOutcome.LOST,
        outcome_at=at(2025, 5, 2),
        currency="EUR",
    )
    reference_request_record(
        "reference_call",
        ReferenceStatus.CANCELLED,
        at(2025, 5, 10),
        rep,
        outcome=ReferenceOutcome.WON,
        deal_amount=5_000,
        outcome_at=at(2025, 6, 1),
        currency="EUR",
    )
    reference_request_record("reference_call", ReferenceStatus.OPEN, at(2025, 6, 30, 23, 59, 59), rep)
    reference_request_record(
        "reference_call",
        ReferenceStatus.COMPLETED,
        at(2025, 3, 22),
        rep,
        fulfilled_at=at(2025, 4, 1),
        outcome=ReferenceOutcome.WON,
        deal_amount=40_000,
        outcome_at=at(2025, 4, 20),
        currency="USD",
    )
    reference_request_record(
        "reference_call",
        ReferenceStatus.COMPLETED,
        at(2025, 3, 1),
        rep,
        fulfilled_at=at(2025, 3, 5),
        outcome=ReferenceOutcome.WON,
        deal_amount=1,
        outcome_at=at(2025, 3, 31, 23, 59, 59),
        currency="USD",
    )
    db.session.commit()

    adv = reporting.advocates(db.session, Q2)
    assert (adv.new, adv.nominated, adv.imported, adv.self_registered) == (3, 2, 1, 0)
    assert [(t.name, t.joined) for t in reporting.top_nominators(db.session, Q2)] == [("Rep B", 2)]
    assert reporting.reference_requests(db.session, Q2) == reporting.ReferenceRequests(4, 3, 5.0)  # 2, 5, 10 days
    ir = reporting.influenced_revenue(db.session, Q2)
    assert ir.deals == 2 and ir.amounts == {"EUR": 90_000, "USD": 40_000}
    assert {(r.label, r.currency, r.deals, r.amount) for r in ir.by_type} == {
        ("Reference call", "EUR", 1, 90_000),
        ("Reference call", "USD", 1, 40_000),
    }
    assert {(r.label, r.amount) for r in ir.by_industry} == {("Healthcare test", 90_000), ("Any industry", 40_000)}
    assert {(r.label, r.amount) for r in ir.by_region} == {("EMEA test", 90_000), ("Any region", 40_000)}
    assert {(r.label, r.deals) for r in ir.by_size} == {("Huge test", 1), ("Any company size", 1)}
    assert {(r.label, r.currency, r.amount) for r in ir.by_product} == {
        ("Any product", "EUR", 90_000),
        ("Any product", "USD", 40_000),
    }
    assert (ir.with_reference.won, ir.with_reference.decided, ir.with_reference.rate) == (2, 3, 2 / 3)
    assert (ir.without_reference.won, ir.without_reference.decided) == (1, 1)
    table = admin_client.get("/admin/reports?period=quarter&on=2025-05-01").get_data(as_text=True)
    table = table[table.index('id="table-revenue"') : table.index("</table>", table.index('id="table-revenue"'))]
    for row in ("Industry: Healthcare test", "Region: EMEA test", "Company size: Huge test", "Product: Any product"):
        assert f'<th scope="row">{row}</th>' in table, row


def test_an_empty_program(app, admin_client):
    board = reporting.dashboard(db.session, Q2)
    assert board.participations.requested == 0 and board.participations.value == 0
    assert board.participations.completion_rate is None and board.membership.stale_share is None
    assert board.top == [] and sum(board.fatigue.values()) == 0
    resp = admin_client.get("/admin/reports?period=quarter&on=2025-05-15")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "No activity completed in this period." in html and "No nominee joined in this period." in html
    assert "No won deal with a completed reference in this period." in html


def test_a_changed_value_applies_from_that_day_and_the_past_keeps_its_value(app, program, admin_client):
    speaking = activity_type_id("speaking")
    page = admin_client.get("/admin/reports/values").get_data(as_text=True)
    resp = admin_client.post(
        "/admin/reports/values", data={"csrf_token": csrf_from(page), "type_id": speaking, "value": "900"}
    )
    assert resp.status_code == 302
    assert reporting.dashboard(db.session, Q2).participations.value == 650  # April's call still counts 500
    today = utcnow().date()
    history = reporting.value_history(db.session)
    assert history.on(speaking, today) == 900 and history.on(speaking, date(2025, 4, 14)) == 500
    assert history.on(speaking, date(2025, 4, 15)) == 800 and history.on(speaking, date(2024, 12, 31)) == 0
    (event,) = audits("activity_value.set", speaking)[-1:]
    assert (event.details["before"], event.details["after"], event.details["currency"]) == (800, 900, "USD")
    rows = {r.type_id: r for r in reporting.value_rows(db.session)}
    assert (rows[speaking].current, rows[speaking].since) == (900, today)
    html = admin_client.get("/admin/reports/values").get_data(as_text=True)
    assert "800 from 2025-04-15" in html and "500 from 2025-01-01" in html


@pytest.mark.parametrize("value", ["-5", "", "abc", "10000001"])
def test_a_wrong_value_is_refused_with_a_message(app, admin_client, value):
    page = admin_client.get("/admin/reports/values").get_data(as_text=True)
    resp = admin_client.post(
        "/admin/reports/values",
        data={"csrf_token": csrf_from(page), "type_id": activity_type_id("review"), "value": value},
    )
    assert resp.status_code == 422
    assert 'aria-invalid="true"' in resp.get_data(as_text=True)
    assert audits("activity_value.set") == []


def test_the_page_shows_the_numbers_and_each_chart_is_followed_by_its_table(app, program, admin_client):
    resp = admin_client.get("/admin/reports?period=quarter&on=2025-06-30")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Q2 2025" in html and "compared with Q1 2025" in html
    assert re.search(r'stat-value">650</span><span class="stat-label">Value delivered \(USD\)', html)
    assert re.search(r'stat-value">67%</span><span class="stat-label">Completion rate', html)
    charts = re.findall(r'<svg class="chart" id="([^"]+)"', html)
    assert charts == ["chart-by-month", "chart-value", "chart-fatigue"]
    for chart in charts:
        after = html[html.index(f'id="{chart}"') :]
        assert after.index("<table") < after.index("</svg>") + 200  # the table comes right after the chart
        assert "<script" not in after[: after.index("</svg>")] and "style=" not in after[: after.index("</svg>")]
    table = html[html.index('id="table-value"') :]
    assert re.search(r"2025-04</th><td class=\"num\">500</td>", table)
    fatigue = html[html.index('id="table-fatigue"') :]
    assert re.search(r"Unused in 180 days</th><td class=\"num\">3</td>", fatigue)


def test_custom_dates_and_their_mistakes(app, program, admin_client):
    ok = admin_client.get("/admin/reports?period=custom&start=2025-04-01&end=2025-04-30")
    assert ok.status_code == 200 and "01 Apr 2025 – 30 Apr 2025" in ok.get_data(as_text=True)
    backwards = admin_client.get("/admin/reports?period=custom&start=2025-05-01&end=2025-04-01")
    assert backwards.status_code == 422 and "must not be before" in backwards.get_data(as_text=True)
    assert admin_client.get("/admin/reports?period=custom&start=2025-05-01").status_code == 422
    assert admin_client.get("/admin/reports?period=week").status_code == 422
    assert admin_client.get("/admin/reports?period=month&on=not-a-day").status_code == 422


def test_the_window_peak_counts_as_a_day_by_day_walk_does(app):
    """fatigue._window_peak (made faster for whole-program counts) against the plain walk over every window."""
    import random

    from portal.services.fatigue import _window_peak

    def walk(days, d, span=90):
        return max(sum(1 for x in days if s <= x <= s + span - 1) for s in range(d - span + 1, d + 1))

    rng = random.Random(14)
    for _ in range(3000):
        d = 1000
        days = [rng.randint(d - 200, d + 200) for _ in range(rng.randint(0, 12))]
        assert _window_peak(days, d) == walk(days, d), (days, d)


def test_a_value_for_a_type_that_does_not_exist(app, admin_client):
    page = admin_client.get("/admin/reports/values").get_data(as_text=True)
    token = csrf_from(page)
    gone = admin_client.post("/admin/reports/values", data={"csrf_token": token, "type_id": "999999", "value": "5"})
    assert gone.status_code == 422 and "No such activity type." in gone.get_data(as_text=True)
    for bad in ("99999999999", "x", ""):
        resp = admin_client.post("/admin/reports/values", data={"csrf_token": token, "type_id": bad, "value": "5"})
        assert resp.status_code == 400
    assert audits("activity_value.set") == []


# --- kept figures (flask reports refresh, "Refresh now") ------------------------------------------------------------


def _kept_rows() -> list[ReportFigures]:
    return list(db.session.scalars(select(ReportFigures).order_by(ReportFigures.id)))


def test_kept_figures_read_back_as_computed_until_they_are_too_old(app, program, make_user):
    now = utcnow()
    speaking, review = activity_type_id("speaking"), activity_type_id("review")
    for period in (
        Q2,
        reporting.period_for("year", date(2025, 5, 1)),
        reporting.period_for("custom", now.date(), date(2025, 3, 15), date(2025, 5, 2)),
    ):
        live = reporting.figures(db.session, period, now)
        reporting.keep(db.session, live)
        db.session.commit()
        assert reporting.kept(db.session, period, now) == live  # every block, dates and type-id keys included
    board = reporting.dashboard(db.session, Q2, now)
    assert board.kept and board.computed_at == now
    assert board.participations.by_month == {"2025-04": {speaking: 1}, "2025-05": {review: 1}, "2025-06": {}}
    assert [(t.name, t.completed) for t in board.top] == [("Advocate A1", 2)]
    (row,) = [r for r in _kept_rows() if r.kind == "quarter"]
    assert "Advocate A1" not in row.figures  # names are read when shown, never kept

    # A change after the figures were kept: not in them until they are refreshed or too old.
    _part(program["a5"], "review", ParticipationStatus.COMPLETED, at(2025, 6, 1, 9), at(2025, 6, 2, 9))
    assert reporting.dashboard(db.session, Q2, now).participations.requested == 4
    later = now + timedelta(seconds=app.config["REPORT_FIGURES_MAX_AGE"] + 1)
    fresh = reporting.dashboard(db.session, Q2, later)
    assert not fresh.kept and fresh.participations.requested == 5 and fresh.computed_at == later

    # Names are read now: a renamed advocate shows their new name, an erased one is left out (as live).
    db.session.execute(update(User).where(User.id == program["a1"]).values(name="Ada Renamed"))
    db.session.commit()
    assert [t.name for t in reporting.dashboard(db.session, Q2, now).top] == ["Ada Renamed"]
    db.session.execute(update(User).where(User.id == program["a1"]).values(status=Status.DELETED))
    db.session.commit()
    assert reporting.dashboard(db.session, Q2, now).top == []


def test_kept_figures_of_another_shape_currency_or_value_are_not_read(app, program, admin):
    now = utcnow()
    reporting.keep(db.session, reporting.figures(db.session, Q2, now))
    db.session.commit()
    assert reporting.kept(db.session, Q2, now) is not None
    db.session.execute(update(ReportFigures).values(version=reporting.FIGURES_VERSION - 1))
    db.session.commit()
    assert reporting.kept(db.session, Q2, now) is None  # written by an older shape of the code
    db.session.execute(update(ReportFigures).values(version=reporting.FIGURES_VERSION, figures='{"period": 1}'))
    db.session.commit()
    assert reporting.kept(db.session, Q2, now) is None and not reporting.dashboard(db.session, Q2, now).kept
    reporting.keep(db.session, reporting.figures(db.session, Q2, now))
    db.session.commit()
    app.config["PROGRAM_CURRENCY"] = "EUR"
    assert reporting.kept(db.session, Q2, now) is None  # the program's currency changed
    app.config["PROGRAM_CURRENCY"] = "USD"
    assert reporting.kept(db.session, Q2, now) is not None
    reporting.set_value(db.session, activity_type_id("review"), 175, admin.id)
    db.session.commit()
    assert _kept_rows() == [] and reporting.kept(db.session, Q2, now) is None  # a new value: computed live again


def test_flask_reports_refresh_keeps_the_standard_periods_and_removes_old_ones(app, program, runner):
    old = reporting.figures(
        db.session, reporting.period_for("custom", date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 9))
    )
    old.computed_at = utcnow() - timedelta(seconds=app.config["REPORT_FIGURES_MAX_AGE"] + 5)
    reporting.keep(db.session, old)
    db.session.commit()
    for _ in range(2):  # twice: the same six rows, refreshed
        result = runner.invoke(args=["reports", "refresh"])
        assert result.exit_code == 0, result.output
        assert "Figures kept for 6 periods" in result.output
    assert "0 out-of-date" in result.output
    today = utcnow().date()
    rows = _kept_rows()
    assert sorted((r.kind, r.period_start) for r in rows) == sorted(
        (p.kind, p.start) for p in reporting.standard_periods(today)
    )
    quarter = reporting.period_for("quarter", today)
    assert {(quarter.kind, quarter.start), (quarter.kind, quarter.previous().start)} <= {
        (r.kind, r.period_start) for r in rows
    }
    assert reporting.dashboard(db.session, quarter).kept
    assert audits("report.refresh") == []  # the job is not an admin's action


def test_reading_kept_figures_takes_the_same_statements_whatever_the_data(app, program, make_user):
    now = utcnow()

    def statements() -> int:
        reporting.keep(db.session, reporting.figures(db.session, Q2, now))
        db.session.commit()
        with recorded_sql() as sql:
            board = reporting.dashboard(db.session, Q2, now)
        assert board.kept
        return len(sql)

    small = statements()
    for i in range(12):
        uid = make_user(email=f"many{i}@example.com", name=f"Many {i}").id
        _part(uid, "review", ParticipationStatus.COMPLETED, at(2025, 5, 2, 9), at(2025, 5, 3, 9))
    assert statements() == small


def test_refresh_now_keeps_the_period_shown_and_is_audited(app, program, admin_client, admin):
    url = "/admin/reports?period=quarter&on=2025-05-15"
    page = admin_client.get(url).get_data(as_text=True)
    assert "Figures computed now" in page and "Keep these figures" in page
    form = page[page.index('action="/admin/reports/refresh"') :]
    fields = dict(
        re.findall(r'<input type="hidden" name="(period|on|start|end)" value="([^"]*)"', form[: form.index("</form>")])
    )
    assert fields == {"period": "quarter", "on": "2025-04-01"}
    resp = admin_client.post("/admin/reports/refresh", data={"csrf_token": csrf_from(page), **fields})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/reports?period=quarter&on=2025-04-01")
    (event,) = audits("report.refresh")
    assert (event.actor_id, event.details) == (
        admin.id,
        {"kind": "quarter", "start": "2025-04-01", "last_day": "2025-06-30"},
    )
    shown = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Figures as of" in shown and "Refresh now" in shown and "The figures of Q2 2025 are up to date." in shown
    assert re.search(r'stat-value">650</span><span class="stat-label">Value delivered \(USD\)', shown)

    custom = admin_client.get("/admin/reports?period=custom&start=2025-04-03&end=2025-05-20").get_data(as_text=True)
    form = custom[custom.index('action="/admin/reports/refresh"') :]
    fields = dict(
        re.findall(r'<input type="hidden" name="(period|on|start|end)" value="([^"]*)"', form[: form.index("</form>")])
    )
    assert fields == {"period": "custom", "start": "2025-04-03", "end": "2025-05-20"}
    assert (
        admin_client.post("/admin/reports/refresh", data={"csrf_token": csrf_from(custom), **fields}).status_code == 302
    )
    assert reporting.kept(db.session, reporting.period_for("custom", date.today(), date(2025, 4, 3), date(2025, 5, 20)))

    # Mistakes: the wrong way round, no token, a GET.
    bad = admin_client.post(
        "/admin/reports/refresh",
        data={"csrf_token": csrf_from(page), "period": "custom", "start": "2025-05-01", "end": "2025-04-01"},
    )
    assert bad.status_code == 302 and "/admin/reports" in bad.headers["Location"]
    assert "must not be before" in admin_client.get(bad.headers["Location"]).get_data(as_text=True)
    assert admin_client.post("/admin/reports/refresh", data=fields).status_code in (302, 400)
    assert admin_client.get("/admin/reports/refresh").status_code == 405
    assert len(audits("report.refresh")) == 2


def test_concurrent_refreshes_keep_one_row_per_period(app, program):
    now = utcnow()
    shown = reporting.figures(db.session, Q2, now)
    db.session.rollback()

    def go(i):
        with app.app_context():
            begin_write(db.session)
            reporting.keep(db.session, replace(shown, computed_at=now + timedelta(seconds=i)))
            db.session.commit()
            return "kept"

    assert run_threads(6, go) == ["kept"] * 6
    (row,) = _kept_rows()
    assert (row.kind, row.period_start, row.period_end) == ("quarter", Q2.start, Q2.end)
    assert reporting.kept(db.session, Q2, now + timedelta(seconds=10)) is not None


def test_figures_read_before_a_value_change_or_older_than_the_kept_ones_are_not_used(app, program, admin):
    now = utcnow()
    # A refresh read the figures, then an admin set a value (forgetting kept figures), then the refresh wrote.
    read_before = reporting.figures(db.session, Q2, now - timedelta(seconds=30))
    reporting.set_value(db.session, activity_type_id("review"), 175, admin.id)
    db.session.commit()
    reporting.keep(db.session, read_before)
    db.session.commit()
    assert len(_kept_rows()) == 1 and reporting.kept(db.session, Q2, now) is None  # computed live instead
    # Figures computed later are never replaced by older ones (a slow refresh finishing after "Refresh now").
    fresh = reporting.figures(db.session, Q2, now + timedelta(seconds=5))
    reporting.keep(db.session, fresh)
    reporting.keep(db.session, replace(fresh, computed_at=now + timedelta(seconds=1)))
    db.session.commit()
    (row,) = _kept_rows()
    assert row.computed_at == now + timedelta(seconds=5)
    assert reporting.kept(db.session, Q2, now + timedelta(seconds=6)) is not None


def test_kept_top_advocates_still_show_ten_after_one_is_erased(app, program, make_user):
    now = utcnow()
    ids = []
    for i in range(11):
        uid = make_user(email=f"top{i}@example.com", name=f"Top {i:02d}").id
        ids.append(uid)
        for _ in range(13 - i):  # Top 00 completed 13, Top 10 three (Advocate A1 two)
            _part(uid, "review", ParticipationStatus.COMPLETED, at(2025, 5, 2, 9), at(2025, 5, 3, 9))
    reporting.keep(db.session, reporting.figures(db.session, Q2, now))
    db.session.commit()
    board = reporting.dashboard(db.session, Q2, now)
    assert board.kept and [t.name for t in board.top] == [f"Top {i:02d}" for i in range(10)]
    db.session.execute(update(User).where(User.id == ids[0]).values(status=Status.DELETED))
    db.session.commit()
    kept_board = reporting.dashboard(db.session, Q2, now)
    live = reporting.dashboard(db.session, Q2, now + timedelta(hours=2))
    assert kept_board.kept and not live.kept
    assert [t.name for t in kept_board.top] == [t.name for t in live.top] == [f"Top {i:02d}" for i in range(1, 11)]
