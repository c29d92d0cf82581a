"""Every admin page runs a number of SQL queries that does not grow with the data.

The pages come from the app's URL map (every GET route under /admin/), so a new admin page without a
way to fill its URL here fails. Each is visited once to warm up, then counted, with a small program
and again after it has grown (more advocates, participants on the opportunity and on the board,
points entries, redemptions, audit events, registrations waiting, opportunities, and more history for
the advocate whose page is shown): the counts must be the same.
"""

from __future__ import annotations

import pytest
from flask import url_for

from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    AuditEvent,
    EntrySource,
    Nomination,
    Participation,
    ParticipationStatus,
    Role,
    Status,
    User,
    utcnow,
)
from portal.services import coverage, fatigue, imports, points, rewards
from search.indexing import apply_pending
from tests.support import activity_type_id, client_for, make_opp, make_reward, recorded_sql


class Program:
    """A program that can grow: ``grow(n)`` adds n of everything the admin pages list."""

    def __init__(self, make_user, admin_id: int):
        self.make_user = make_user
        self.admin_id = admin_id
        self.n = 0
        self.opp_id = make_opp("speaking", title="Summit panel", capacity=None)
        self.board_id = make_opp("advisory_board", title="Product board")
        self.reward_id = make_reward(cost=10, name="Sticker")
        self.type_id = activity_type_id("speaking")
        self.focus_id = self._advocate()  # the advocate whose admin page is counted
        # An uploaded CSV import (its preview page; the file does not grow with the program)
        job = imports.upload(db.session, "people.csv", b"Name,Email\nAda,ada@example.com\nBob,bad\n", admin_id)
        db.session.commit()
        self.job_id = job.id
        self.target_id = coverage.create_target(
            db.session, coverage.TargetInput("Germany", country_code="DE", wanted=5), admin_id
        ).id
        db.session.commit()

    def _advocate(self) -> int:
        self.n += 1
        u = self.make_user(email=f"grow{self.n}@example.com", name=f"Grown Advocate {self.n}")
        db.session.add(AdvocateProfile(user_id=u.id, country_code="DE", story="A story."))
        db.session.commit()
        return u.id

    def grow(self, n: int) -> None:
        s = db.session
        now = utcnow()
        for _ in range(n):
            uid = self._advocate()
            extra_opp = make_opp("review", title=f"Review {self.n}")
            s.add_all(
                [
                    Participation(opportunity_id=self.opp_id, user_id=uid, status=ParticipationStatus.REQUESTED),
                    Participation(
                        opportunity_id=self.board_id,
                        user_id=uid,
                        status=ParticipationStatus.APPROVED,
                        holds_seat=True,
                        engaged_at=now,
                        decided_at=now,
                        decided_by_id=self.admin_id,
                    ),
                    Participation(  # the focus advocate's history grows too
                        opportunity_id=extra_opp,
                        user_id=self.focus_id,
                        status=ParticipationStatus.COMPLETED,
                        engaged_at=now,
                        decided_at=now,
                        completed_at=now,
                    ),
                ]
            )
            s.add(AuditEvent(actor_id=self.admin_id, action="test.grow", target_type="user", target_id=uid))
            s.add(Nomination(nominator_id=self.admin_id, email=f"nominee{self.n}@example.com", name="Nominee"))
            for who in (uid, self.focus_id):
                points.award(s, who, 50, key=f"grow:{who}:{self.n}", reason="Grown", source=EntrySource.MANUAL)
            s.commit()
            rewards.redeem(s, s.get(User, uid), self.reward_id, f"grow-order-{self.n}")
            s.commit()
            self.make_user(Role.ADVOCATE, Status.PENDING, email=f"waiting{self.n}@example.com")
        s.rollback()


def admin_pages(app) -> list:
    return sorted(
        (r for r in app.url_map.iter_rules() if r.rule.startswith("/admin/") and "GET" in r.methods),
        key=lambda r: r.endpoint,
    )


def counts(app, client, program: Program) -> dict[str, int]:
    """SQL statements per admin page (after one warm-up visit)."""
    values = {"opp_id": program.board_id, "reward_id": program.reward_id, "type_id": program.type_id}
    values["user_id"] = program.focus_id
    values["job_id"] = program.job_id
    values["list_kind"] = "regions"  # the lists' pages: regions also list every country
    values["tag_kind"] = "topics"
    values["target_id"] = program.target_id
    out = {}
    for rule in admin_pages(app):
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: say in this test how to fill {sorted(missing)}"
        with app.test_request_context():
            url = url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})
        assert client.get(url).status_code == 200, url
        with recorded_sql() as sql:
            resp = client.get(url)
        assert resp.status_code == 200, url
        out[url] = len(sql)
    # The opportunity page of the one with the waiting requests, too (the board's members are approved), and
    # the advocate list filtered by each fatigue status and by level.
    apply_pending(db.engine)  # the program grew straight in the database: into the index (the fatigue filter)
    with app.test_request_context():
        extra = [url_for("admin.opportunity_detail", opp_id=program.opp_id)]
        extra += [url_for("admin.advocates", fatigue=key) for key in fatigue.STATUS_LABELS]
        extra += [url_for("admin.advocates", fatigue="at_limit", page=2, sort="newest")]
        extra += [url_for("admin.advocates", level=name) for name in ("Member", "Bronze")]
        extra += [url_for("admin.advocates", level="Member", fatigue="available")]
    for url in extra:
        client.get(url)
        with recorded_sql() as sql:
            assert client.get(url).status_code == 200, url
        out[url] = len(sql)
    return out


@pytest.fixture
def program(app, make_user, admin):
    return Program(make_user, admin.id)


def test_every_admin_page_runs_the_same_queries_at_two_sizes(app, admin, program, monkeypatch):
    # Work done per chunk of advocates shows at these sizes: chunks of 5 (fatigue.ids_with_status, which
    # the fatigue filter called for every active advocate, 8 statements per chunk)
    by_chunks = fatigue.ids_with_status
    monkeypatch.setattr(fatigue, "ids_with_status", lambda *a, **kw: by_chunks(*a, **{**kw, "chunk": 5}))
    client = client_for(app, admin.id)
    # an advocate at their own limit and one at Bronze: the filtered lists are not empty at either size
    limited = program.make_user(email="limited@example.com", name="Limited Advocate")
    db.session.add(AdvocateProfile(user_id=limited.id, country_code="DE", max_asks_per_month=0))
    points.award(db.session, limited.id, 600, key="bronze", reason="Bronze", source=EntrySource.MANUAL)
    db.session.commit()
    program.grow(2)
    small = counts(app, client, program)
    program.grow(12)
    large = counts(app, client, program)
    grew = {url: (small[url], large[url]) for url in small if large[url] != small[url]}
    assert grew == {}, f"pages whose queries grew with the data (2 -> 14 advocates): {grew}"
    assert len(small) >= 15  # every admin page was visited, not an empty map


def test_the_opportunity_page_lists_participants_by_page_and_by_status(app, admin, program, monkeypatch):
    from portal.services import opportunities

    monkeypatch.setattr(opportunities, "PARTICIPANTS_PER_PAGE", 5)
    program.grow(7)  # 7 requests waiting on the panel
    client = client_for(app, admin.id)
    base = f"/admin/opportunities/{program.opp_id}"
    first = client.get(base).get_data(as_text=True)
    assert "Page 1 of 2" in first and "Requested (7)" in first and "All (7)" in first
    names_on = lambda html: [n for n in (f"Grown Advocate {i}" for i in range(2, 9)) if f"{n}<" in html]  # noqa: E731
    second = client.get(f"{base}?page=2").get_data(as_text=True)
    assert len(names_on(first)) == 5 and len(names_on(second)) == 2
    assert set(names_on(first)).isdisjoint(names_on(second))
    assert "Page 2 of 2" in client.get(f"{base}?page=99").get_data(as_text=True)  # past the end: the last page
    approved = client.get(f"{base}?status=approved").get_data(as_text=True)
    assert "No one approved." in approved and names_on(approved) == []
    assert client.get(f"{base}?status=bogus").status_code == 200  # an unknown status shows everyone
