"""An admin edits an advocate's profile (/admin/advocates/<id>/edit): every field the advocate edits on
their own profile page, with the same form and the same rules (profiles.edit_for_admin); one audit
entry with the changed fields' before and after; the search index follows; the advocate's freshness
and completion points do not move; any account status but erased."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    AuditEvent,
    Industry,
    PointsEntry,
    Product,
    Role,
    SizeBand,
    Status,
    User,
    utcnow,
)
from search.indexing import apply_pending
from tests.support import audits, csrf_from, find, item_id, make_advocate, names, text_of

LONG_AGO = timedelta(days=400)


@pytest.fixture
def ada(app, make_user):
    """An active advocate whose profile was last confirmed long ago (stale)."""
    uid = make_advocate(
        make_user,
        "ada@example.com",
        name="Ada Lovelace",
        industry="Healthcare",
        size="50-249 employees",
        country="DE",
        products=["Data Platform"],
        story="Old story about ledgers.",
        linkedin_url="https://www.linkedin.com/in/ada",
    )
    db.session.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == uid).values(confirmed_at=utcnow() - LONG_AGO)
    )
    db.session.commit()
    apply_pending(db.engine)  # in the search index, as a saved profile would be
    return uid


def _url(uid: int) -> str:
    return f"/admin/advocates/{uid}/edit"


def _form(client, uid: int) -> dict:
    """The edit form's fields as the page fills them (what a browser would send back unchanged)."""
    html = client.get(_url(uid)).get_data(as_text=True)
    data: dict = {"csrf_token": csrf_from(html)}
    for name in ("name", "job_title", "company", "use_cases", "topics", "linkedin_url"):
        m = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
        value = re.search(r'value="([^"]*)"', m.group(0)) if m else None
        data[name] = value.group(1).replace("&#39;", "'").replace("&amp;", "&") if value else ""
    story = re.search(r'<textarea[^>]*name="story"[^>]*>\s*(.*?)</textarea>', html, re.S)
    data["story"] = story.group(1) if story else ""
    for name in ("industry_id", "size_band_id", "country_code"):
        select_html = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S).group(0)
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select_html)
        data[name] = (chosen.group(1) or chosen.group(2)) if chosen else ""
    tags = re.findall(r"<input[^>]*>", html)

    def checked(tag: str) -> bool:
        return re.search(r"\schecked[\s>]", tag) is not None

    data["product_ids"] = [
        re.search(r'value="(\d+)"', t).group(1) for t in tags if 'name="product_ids"' in t and checked(t)
    ]
    for name in ("show_on_leaderboard",):
        if any(f'name="{name}"' in t and checked(t) for t in tags):
            data[name] = "y"
    return data


def _profile(uid: int) -> tuple[User, AdvocateProfile]:
    db.session.rollback()
    return db.session.get(User, uid), db.session.get(AdvocateProfile, uid)


NEW = {
    "name": "Ada King",
    "job_title": "Countess of Computing",
    "company": "Analytical Engines Ltd",
    "use_cases": "fraud detection, Customer onboarding",
    "topics": "zero trust",
    "story": "We cut reconciliation time by half with the zephyrology pipeline.",
    "linkedin_url": "https://linkedin.com/in/ada-king?trk=x",
    "country_code": "JP",
}


def _new_values() -> dict:
    return {
        **NEW,
        "industry_id": str(item_id(Industry, "Insurance")),
        "size_band_id": str(item_id(SizeBand, "5,000+ employees")),
        "product_ids": [str(item_id(Product, "Security Suite")), str(item_id(Product, "Analytics Cloud"))],
        # show_on_leaderboard left out: unticked
    }


def test_the_advocate_page_links_to_the_edit_page_which_shows_what_is_saved(app, admin_client, ada):
    page = admin_client.get(f"/admin/advocates/{ada}/profile").get_data(as_text=True)
    assert f'href="{_url(ada)}"' in page
    form = _form(admin_client, ada)
    assert form["name"] == "Ada Lovelace" and form["story"] == "Old story about ledgers."
    assert form["industry_id"] == str(item_id(Industry, "Healthcare"))
    assert form["size_band_id"] == str(item_id(SizeBand, "50-249 employees"))
    assert form["country_code"] == "DE" and form["linkedin_url"] == "https://www.linkedin.com/in/ada"
    assert form["product_ids"] == [str(item_id(Product, "Data Platform"))]
    assert form.get("show_on_leaderboard") == "y"
    assert "community directory" not in admin_client.get(_url(ada)).get_data(as_text=True)  # there is none
    assert "Products they use" in page or "Products they use" in admin_client.get(_url(ada)).get_data(as_text=True)


def test_every_field_round_trips_and_one_audit_entry_holds_the_changes(app, admin, admin_client, ada):
    before_confirmed = _profile(ada)[1].confirmed_at
    data = {**_form(admin_client, ada), **_new_values()}
    data.pop("show_on_leaderboard", None)
    resp = admin_client.post(_url(ada), data=data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/admin/advocates/{ada}/profile")

    user, profile = _profile(ada)
    assert (user.name, user.job_title, user.company) == (NEW["name"], NEW["job_title"], NEW["company"])
    assert profile.industry.name == "Insurance" and profile.size_band.name == "5,000+ employees"
    assert profile.country_code == "JP"
    assert sorted(p.name for p in profile.products) == ["Analytics Cloud", "Security Suite"]
    assert sorted(t.name for t in profile.use_cases) == ["Customer onboarding", "fraud detection"]
    assert [t.name for t in profile.topics] == ["zero trust"]
    assert profile.story == NEW["story"]
    assert profile.linkedin_url == "https://www.linkedin.com/in/ada-king"  # canonical, as the advocate's own
    assert profile.show_in_directory is True and profile.show_on_leaderboard is False  # no directory: unchanged
    # not the advocate confirming: freshness unchanged
    assert profile.confirmed_at == before_confirmed

    # the page shows the saved values again (the round trip)
    again = _form(admin_client, ada)
    assert again["name"] == NEW["name"] and again["story"] == NEW["story"]
    assert again["use_cases"] == "Customer onboarding, fraud detection" and again["topics"] == "zero trust"
    assert again["industry_id"] == str(item_id(Industry, "Insurance")) and again["country_code"] == "JP"
    assert sorted(again["product_ids"]) == sorted(_new_values()["product_ids"])
    assert "show_on_leaderboard" not in again

    (event,) = audits("profile.edit", ada)
    assert event.actor_id == admin.id and event.target_type == "user"
    assert event.details == {
        "before": {
            "name": "Ada Lovelace",
            "job_title": "Engineer",
            "company": "Acme Analytics",
            "industry": "Healthcare",
            "size_band": "50-249 employees",
            "country": "DE",
            "products": ["Data Platform"],
            "use_cases": [],
            "topics": [],
            "story": "Old story about ledgers.",
            "linkedin_url": "https://www.linkedin.com/in/ada",
            "show_on_leaderboard": True,
        },
        "after": {
            "name": "Ada King",
            "job_title": "Countess of Computing",
            "company": "Analytical Engines Ltd",
            "industry": "Insurance",
            "size_band": "5,000+ employees",
            "country": "JP",
            "products": ["Analytics Cloud", "Security Suite"],
            "use_cases": ["Customer onboarding", "fraud detection"],
            "topics": ["zero trust"],
            "story": NEW["story"],
            "linkedin_url": "https://www.linkedin.com/in/ada-king",
            "show_on_leaderboard": False,
        },
    }
    # the timeline shows the admin's edit
    assert "profile.edit" in text_of(admin_client.get(f"/admin/advocates/{ada}/profile"))


def test_only_the_changed_fields_are_recorded_and_no_change_records_nothing(app, admin_client, ada):
    data = _form(admin_client, ada)
    assert admin_client.post(_url(ada), data=data).status_code == 302
    assert audits("profile.edit", ada) == []
    data = {**_form(admin_client, ada), "company": "Babbage & Co"}
    assert admin_client.post(_url(ada), data=data).status_code == 302
    (event,) = audits("profile.edit", ada)
    assert event.details == {"before": {"company": "Acme Analytics"}, "after": {"company": "Babbage & Co"}}


def test_no_completion_points_and_freshness_kept(app, admin_client, ada):
    """Filling the last missing fields completes the profile, but the advocate did not: no points (they
    come with the advocate's own next save), and the profile stays as stale as it was."""
    data = {**_form(admin_client, ada), **_new_values()}
    assert admin_client.post(_url(ada), data=data).status_code == 302
    assert db.session.scalars(select(PointsEntry).where(PointsEntry.user_id == ada)).all() == []
    card = admin_client.get(f"/admin/advocates/{ada}/profile").get_data(as_text=True)
    assert "Confirmed 400 days ago" in card and "may be out of date" in card
    stale = admin_client.get("/admin/advocates", query_string={"freshness": "stale"}).get_data(as_text=True)
    assert "Ada King" in stale


def test_search_finds_the_new_values(app, admin_client, ada):
    assert names(find("ledgers")) == ["Ada Lovelace"]
    data = {**_form(admin_client, ada), **_new_values()}
    assert admin_client.post(_url(ada), data=data).status_code == 302
    assert names(find("zephyrology")) == ["Ada King"]
    assert names(find("ledgers")) == []
    assert names(find(industry=str(item_id(Industry, "Insurance")))) == ["Ada King"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"linkedin_url": "https://evil.example/in/ada"}, "That is not a LinkedIn address"),
        ({"topics": ", ".join(f"topic {i}" for i in range(16))}, "Add at most 15 topics."),
        ({"use_cases": "x" * 41}, "at most 40 characters"),
        ({"story": "s" * 5001}, "Field cannot be longer than 5000 characters."),
        ({"industry_id": "999999"}, "Not a valid choice"),
        ({"country_code": "XX"}, "Not a valid choice"),
        ({"product_ids": ["999999"]}, "not a valid choice"),
    ],
)
def test_invalid_input_is_refused_with_the_message_and_changes_nothing(app, admin_client, ada, change, message):
    data = {**_form(admin_client, ada), "company": "Changed Co", **change}
    resp = admin_client.post(_url(ada), data=data)
    assert resp.status_code == 422
    page = text_of(resp)
    assert message.lower() in page.lower(), page[:2000]
    assert 'value="Changed Co"' in resp.get_data(as_text=True)  # the admin's input is kept on the page
    user, _ = _profile(ada)
    assert user.company == "Acme Analytics"
    assert audits("profile.edit", ada) == []


def test_an_inactive_list_item_is_refused_by_the_service(app, admin_client, ada):
    """The form offers active items only; one retired while the page was open is refused by the rules."""
    data = {**_form(admin_client, ada), "size_band_id": str(item_id(SizeBand, "1-49 employees"))}
    db.session.execute(update(SizeBand).where(SizeBand.name == "1-49 employees").values(active=False))
    db.session.commit()
    resp = admin_client.post(_url(ada), data=data)
    assert resp.status_code == 422


@pytest.mark.parametrize("status", [Status.SUSPENDED, Status.PENDING])
def test_suspended_and_pending_advocates_can_be_edited(app, admin_client, make_user, status):
    user = make_user(Role.ADVOCATE, status, email=f"{status.value}@example.com", name="Someone Waiting")
    uid = user.id
    assert db.session.get(AdvocateProfile, uid) is None  # a pending one may have no profile yet
    data = {**_form(admin_client, uid), "job_title": "Head of Data", "story": "A story."}
    assert admin_client.post(_url(uid), data=data).status_code == 302
    user, profile = _profile(uid)
    assert user.job_title == "Head of Data" and profile.story == "A story." and user.status == status
    assert profile.confirmed_at is None  # still never confirmed by them
    (event,) = audits("profile.edit", uid)
    assert event.details == {
        "before": {"job_title": "Engineer", "story": ""},
        "after": {"job_title": "Head of Data", "story": "A story."},
    }


def test_only_advocates_who_are_not_erased(app, admin, admin_client, make_user):
    staff = make_user(Role.STAFF, email="sam.staff@example.com")
    gone = make_user(Role.ADVOCATE, Status.DELETED, email="gone@example.com")
    for uid in (staff.id, gone.id, admin.id, 999999):
        assert admin_client.get(_url(uid)).status_code == 404
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "profile.edit")) is None
