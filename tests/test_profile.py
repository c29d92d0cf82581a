"""Advocate self-service, the profile: fields, lists, derived region, tags with suggestions,
story paragraphs, LinkedIn, visibility, the completeness meter, validation, escaping and who may do what."""

import json

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Country,
    Industry,
    Product,
    Region,
    SizeBand,
    Status,
    Tag,
    TagKind,
    User,
)
from portal.services import lists, points
from tests.support import active_ids, login, post_form, profile_data, reload, save_profile, text

SCRIPT = '<script>alert("pwn")</script>'
ESCAPED = "&lt;script&gt;alert("
BOLD = "<b onmouseover=alert(1)>bold</b>"


def snapshot(user_id):
    """Everything the profile form can change, as the database has it now."""
    u = reload(User, user_id)
    p = db.session.get(AdvocateProfile, user_id)
    state = {"name": u.name, "job_title": u.job_title, "company": u.company}
    if p is not None:
        state.update(
            industry=p.industry_id,
            size=p.size_band_id,
            country=p.country_code,
            products=sorted(x.id for x in p.products),
            tags=sorted((t.kind.value, t.name) for t in p.tags),
            story=p.story,
            linkedin=p.linkedin_url,
            directory=p.show_in_directory,
            leaderboard=p.show_on_leaderboard,
            confirmed_at=p.confirmed_at,
        )
    db.session.rollback()
    return state


# --- saving ---------------------------------------------------------------------------------------------------


def test_profile_saves_every_field_and_derives_region(advocate_client, advocate):
    resp = save_profile(advocate_client, country_code="JP")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/me/profile")
    u = reload(User, advocate.id)
    p = db.session.get(AdvocateProfile, advocate.id)
    assert (u.name, u.job_title, u.company) == ("Ada Advocate", "CISO", "Bluefin Bank")
    assert p.industry.name == "Banking and capital markets" and p.size_band.name == "1-49 employees"
    assert p.country.name == "Japan" and p.region.name == "Asia Pacific"  # the region follows the country
    assert [x.name for x in p.products] == ["Analytics Cloud", "Data Platform"]
    assert sorted(t.name for t in p.use_cases) == ["customer onboarding", "fraud detection"]
    assert sorted(t.name for t in p.topics) == ["GDPR", "zero trust"]
    assert p.linkedin_url == "https://www.linkedin.com/in/ada-advocate"
    assert p.show_in_directory and p.show_on_leaderboard
    page = text(advocate_client.get("/me/profile"))
    assert "Your profile is saved and marked as current." in page
    assert 'value="CISO"' in page and 'value="Bluefin Bank"' in page and 'value="GDPR, zero trust"' in page
    assert '<option selected value="JP">Japan</option>' in page


def test_changing_the_country_changes_the_region(advocate_client, advocate):
    save_profile(advocate_client, country_code="BR")
    assert reload(AdvocateProfile, advocate.id).region.name == "Latin America"
    save_profile(advocate_client, country_code="ZA")
    assert reload(AdvocateProfile, advocate.id).region.name == "Africa"
    save_profile(advocate_client, country_code="")
    p = reload(AdvocateProfile, advocate.id)
    assert p.country is None and p.region is None


def test_story_is_plain_text_with_paragraphs(advocate_client, advocate):
    story = "First paragraph, line one.\r\nLine two.\r\n\r\nSecond paragraph: <b>not bold</b> & done."
    assert save_profile(advocate_client, story=story).status_code == 302
    stored = reload(AdvocateProfile, advocate.id).story
    assert stored == "First paragraph, line one.\nLine two.\n\nSecond paragraph: <b>not bold</b> & done."
    page = text(advocate_client.get("/me/profile"))
    assert "Line two.\n\nSecond paragraph: &lt;b&gt;not bold&lt;/b&gt; &amp; done.</textarea>" in page
    assert json.loads(advocate_client.get("/me/data.json").data)["profile"]["story"] == stored


def test_several_products_and_clearing_lists(advocate_client, advocate):
    all_products = active_ids(Product, 20)
    assert save_profile(advocate_client, product_ids=[str(i) for i in all_products]).status_code == 302
    assert len(reload(AdvocateProfile, advocate.id).products) == len(all_products) == 12
    assert (
        save_profile(
            advocate_client, product_ids=None, use_cases="", topics="", industry_id="None", size_band_id=""
        ).status_code
        == 302
    )
    p = reload(AdvocateProfile, advocate.id)
    assert p.products == [] and p.tags == [] and p.industry_id is None and p.size_band_id is None


def test_visibility_switches(advocate_client, advocate):
    save_profile(advocate_client, show_in_directory=None, show_on_leaderboard=None)
    p = reload(AdvocateProfile, advocate.id)
    assert p.show_in_directory and not p.show_on_leaderboard  # no directory, no switch: unchanged
    save_profile(advocate_client, show_on_leaderboard="y", show_in_directory=None)
    p = reload(AdvocateProfile, advocate.id)
    assert p.show_in_directory and p.show_on_leaderboard


def test_tags_are_cleaned_deduplicated_and_shared_as_suggestions(app, advocate_client, advocate, make_user):
    assert (
        save_profile(
            advocate_client, use_cases="  Fraud   Detection ,fraud detection,, ,KYC ", topics="Zero Trust"
        ).status_code
        == 302
    )
    p = reload(AdvocateProfile, advocate.id)
    assert sorted(t.name for t in p.use_cases) == ["Fraud Detection", "KYC"]
    # Another advocate gets the first one's tags as suggestions and reuses the same tag rows.
    other = make_user(email="olive@example.com", name="Olive Other")
    oc = app.test_client()
    login(oc, other.email)
    page = text(oc.get("/me/profile"))
    assert '<datalist id="use-case-suggestions" data-comma-list>' in page
    assert '<option value="Fraud Detection">' in page and '<option value="Zero Trust">' in page
    assert 'list="use-case-suggestions"' in page and 'list="topic-suggestions"' in page
    assert save_profile(oc, name="Olive Other", use_cases="fraud DETECTION", topics="zero trust").status_code == 302
    n = db.session.scalar(select(func.count()).select_from(Tag).where(Tag.slug == "fraud detection"))
    assert n == 1
    assert [t.name for t in reload(AdvocateProfile, other.id).use_cases] == ["Fraud Detection"]
    # The same word as use case and as topic are two different tags.
    save_profile(oc, name="Olive Other", use_cases="KYC", topics="KYC")
    p = reload(AdvocateProfile, other.id)
    assert [t.name for t in p.use_cases] == ["KYC"] and [t.name for t in p.topics] == ["KYC"]
    assert {t.kind for t in p.tags} == {TagKind.USE_CASE, TagKind.TOPIC}


def test_exactly_fifteen_tags_of_forty_characters_are_accepted(advocate_client, advocate):
    tags = [f"{i:02d}" + "t" * 38 for i in range(15)]
    assert save_profile(advocate_client, topics=",".join(tags)).status_code == 302
    assert sorted(t.name for t in reload(AdvocateProfile, advocate.id).topics) == tags
    assert save_profile(advocate_client, use_cases="u" * 40).status_code == 302
    assert reload(AdvocateProfile, advocate.id).use_cases[0].name == "u" * 40


# --- validation: 422 with a message, never 500, nothing saved ------------------------------------------------------

INVALID = [
    ("name", "", "This field is required"),
    ("name", "   ", "This field is required"),
    ("name", "n" * 121, "cannot be longer than 120"),
    ("job_title", "", "This field is required"),
    ("job_title", "j" * 161, "cannot be longer than 160"),
    ("company", "c" * 161, "cannot be longer than 160"),
    ("industry_id", "99999", "Not a valid choice"),
    ("industry_id", "abc", "Invalid Choice"),
    ("industry_id", "0", "Not a valid choice"),
    ("size_band_id", "99999", "Not a valid choice"),
    ("country_code", "ZZ", "Not a valid choice"),
    ("country_code", "de", "Not a valid choice"),
    ("country_code", "DEU", "Not a valid choice"),
    ("product_ids", ["99999"], "not a valid choice"),
    ("product_ids", ["abc"], "could not be coerced"),
    ("use_cases", "u" * 41, "at most 40 characters"),
    ("topics", ",".join(f"t{i}" for i in range(16)), "Add at most 15 topics"),
    ("topics", "x" * 41, "at most 40"),
    ("use_cases", ",".join(f"u{i}" for i in range(16)), "Add at most 15 use cases"),
    ("topics", "x" * 801, "cannot be longer than 800"),
    ("story", "s" * 5001, "cannot be longer than 5000"),
    ("linkedin_url", "http://www.linkedin.com/in/ada", "must start with https://"),
    ("linkedin_url", "javascript:alert(1)", "must start with https://"),
    ("linkedin_url", "https://evil.example/in/ada", "not a LinkedIn address"),
    ("linkedin_url", "https://linkedin.com.evil.example/in/ada", "not a LinkedIn address"),
    ("linkedin_url", "https://notlinkedin.com/in/ada", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/" + "a" * 230, "cannot be longer than 255"),
    ("linkedin_url", "https://[www.linkedin.com/in/ada", "LinkedIn"),
    # Browsers read everything before a (backslash-hidden) '@' as user info and go to the host after it.
    ("linkedin_url", "https://evil.example\\@www.linkedin.com/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://evil.example@www.linkedin.com/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://ada:secret@www.linkedin.com/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com\\@evil.example/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com:99999/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com:443/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com:/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/ada smith", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/ada\tsmith", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/ada%0A", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/%2F%2Fevil.example", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/..", "not a LinkedIn address"),
    ("linkedin_url", 'https://www.linkedin.com/in/a"><script>alert(1)</script>', "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/in/", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/feed/", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com/redir/redirect?url=https://evil.example", "not a LinkedIn address"),
    ("linkedin_url", "https://www.linkedin.com./in/x", "not a LinkedIn address"),
    ("linkedin_url", "https://ads.evil.linkedin.com/in/x", "not a LinkedIn address"),
    ("linkedin_url", "https:www.linkedin.com/in/x", "not a LinkedIn address"),
]


@pytest.mark.parametrize("field,value,message", INVALID, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(INVALID)])
def test_invalid_profile_input_is_refused_and_nothing_saved(advocate_client, advocate, field, value, message):
    assert save_profile(advocate_client).status_code == 302
    before = snapshot(advocate.id)
    changes = {"name": "Changed Name", "job_title": "Changed title", "story": "Changed story", field: value}
    resp = save_profile(advocate_client, **changes)
    assert resp.status_code == 422
    body = text(resp)
    assert message.lower() in body.lower()
    assert 'role="alert"' in body
    assert snapshot(advocate.id) == before


@pytest.mark.parametrize(
    "typed,stored",
    [
        ("https://www.linkedin.com/in/ada", "https://www.linkedin.com/in/ada"),
        (
            "  https://LinkedIn.com/in/ada-advocate/?utm_source=share&trk=x#about  ",
            "https://www.linkedin.com/in/ada-advocate",
        ),
        ("https://de.linkedin.com/in/ada_advocate.1/details/experience/", "https://www.linkedin.com/in/ada_advocate.1"),
        ("HTTPS://WWW.LINKEDIN.COM/IN/Ada", "https://www.linkedin.com/in/Ada"),
        ("https://www.linkedin.com/in/jürgen-müller", "https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller"),
        ("https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller", "https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller"),
        ("https://www.linkedin.com/company/bluefin-bank/", "https://www.linkedin.com/company/bluefin-bank"),
    ],
)
def test_linkedin_address_is_stored_rebuilt_and_canonical(advocate_client, advocate, typed, stored):
    assert save_profile(advocate_client, linkedin_url=typed).status_code == 302
    assert reload(AdvocateProfile, advocate.id).linkedin_url == stored
    db.session.rollback()
    # the stored form saves again unchanged
    assert save_profile(advocate_client, linkedin_url=stored).status_code == 302
    assert reload(AdvocateProfile, advocate.id).linkedin_url == stored


def test_invalid_first_save_creates_nothing(advocate_client, advocate):
    resp = save_profile(advocate_client, linkedin_url="https://evil.example/x")
    assert resp.status_code == 422
    db.session.rollback()
    p = db.session.get(AdvocateProfile, advocate.id)
    assert p is None or p.confirmed_at is None
    assert reload(User, advocate.id).job_title == "Engineer"


def test_inactive_list_items_cannot_be_chosen(advocate_client, advocate):
    industry = db.session.get(Industry, active_ids(Industry)[0])
    product = db.session.get(Product, active_ids(Product)[0])
    industry.active = product.active = False
    db.session.commit()
    page = text(advocate_client.get("/me/profile"))
    assert f'value="{industry.id}"' not in page.split('id="industry_id"')[1].split("</select>")[0]
    r1 = save_profile(advocate_client, industry_id=str(industry.id))
    r2 = save_profile(advocate_client, product_ids=[str(product.id)])
    assert r1.status_code == r2.status_code == 422
    assert (
        db.session.get(AdvocateProfile, advocate.id) is None
        or reload(AdvocateProfile, advocate.id).confirmed_at is None
    )


def test_profile_post_without_csrf_token_is_refused(advocate_client, advocate):
    resp = advocate_client.post("/me/profile", data=profile_data(name="No Token"))
    assert resp.status_code == 400
    assert reload(User, advocate.id).name == "Ada Advocate"


# --- escaping and unicode ----------------------------------------------------------------------------------------


def test_html_in_every_text_field_is_shown_escaped(app, advocate_client, advocate, admin_client, staff_client):
    resp = save_profile(
        advocate_client,
        name=f"Ada {SCRIPT}",
        job_title=f"CISO {BOLD}",
        company=f"Evil {SCRIPT} Inc",
        use_cases=SCRIPT[:40],
        topics=BOLD,
        story=f"{SCRIPT}\n\n{BOLD}",
    )
    assert resp.status_code == 302
    assert reload(User, advocate.id).name == f"Ada {SCRIPT}"  # stored as typed
    pages = {
        "profile": advocate_client.get("/me/profile"),
        "dashboard": advocate_client.get("/dashboard"),
        "preferences": advocate_client.get("/me/preferences"),
        "admin advocates": admin_client.get("/admin/advocates"),
        "staff search": staff_client.get("/search/advocates?q=Ada&include_unavailable=1"),
        "preview": advocate_client.get("/me/profile/preview"),
        "admin profile": admin_client.get(f"/admin/advocates/{advocate.id}/profile"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        body = text(page)
        assert SCRIPT not in body and BOLD not in body, where
        assert "<script>alert(1)" not in body, where
        if where != "preferences":  # the one page that does not show the name
            assert ESCAPED in body, where
    assert "&lt;b onmouseover=alert(1)&gt;" in text(pages["profile"])
    assert "Ada &lt;script&gt;" in text(pages["admin advocates"])
    assert "Ada &lt;script&gt;" in text(pages["staff search"])


def test_emoji_and_right_to_left_text_are_kept_exactly(advocate_client, advocate):
    name = "דנה כהן 😀👩\u200d💻"
    story = "مرحبا بالعالم 🌍\n\n\u200fשלום עולם — café naïve"
    resp = save_profile(
        advocate_client,
        name=name,
        job_title="مديرة التقنية",
        company="חברה 🚀",
        use_cases="ذكاء اصطناعي, 🚀 launch",
        topics="אבטחת מידע",
        story=story,
    )
    assert resp.status_code == 302
    u = reload(User, advocate.id)
    assert (u.name, u.job_title, u.company) == (name, "مديرة التقنية", "חברה 🚀")
    data = json.loads(advocate_client.get("/me/data.json").get_data(as_text=True))
    assert data["account"]["name"] == name and data["account"]["company"] == "חברה 🚀"
    assert data["profile"]["story"] == story
    assert sorted(data["profile"]["use_cases"]) == sorted(["ذكاء اصطناعي", "🚀 launch"])
    assert data["profile"]["topics"] == ["אבטחת מידע"]
    page = text(advocate_client.get("/me/profile"))
    assert name in page and "مرحبا بالعالم 🌍" in page
    assert f"Welcome, {name}" in text(advocate_client.get("/dashboard"))


def test_control_characters_are_dropped_but_text_kept(advocate_client, advocate):
    assert (
        save_profile(advocate_client, name="Ada\x00 Adv\x07ocate", story="line\x0b one\ttab\nline two").status_code
        == 302
    )
    u = reload(User, advocate.id)
    assert u.name == "Ada Advocate"
    assert db.session.get(AdvocateProfile, advocate.id).story == "line one\ttab\nline two"


# --- completeness -------------------------------------------------------------------------------------------------

ALL_MISSING = [
    "your industry",
    "your company size",
    "your country",
    "the products you use",
    "your use cases",
    "topics you know well",
    "your story (at least a few sentences)",
    "your LinkedIn profile",
    "at least one activity you are willing to do",
]


def test_completeness_meter_says_exactly_what_is_missing(advocate_client, advocate):
    page = text(advocate_client.get("/me/profile"))
    assert "Profile 18% complete" in page  # job title and company came with the registration
    assert f"Still missing: {', '.join(ALL_MISSING)}." in page
    dash = text(advocate_client.get("/dashboard"))
    assert "18% complete" in dash and f"Missing: {', '.join(ALL_MISSING)}." in dash

    save_profile(advocate_client, linkedin_url="", story="Too short.")
    page = text(advocate_client.get("/me/profile"))
    assert (
        "Still missing: your story (at least a few sentences), your LinkedIn profile, "
        "at least one activity you are willing to do." in page
    )
    assert "Profile 73% complete" in page

    save_profile(advocate_client)
    t = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    db.session.rollback()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{t.id}": "y"}, page="/me/preferences")
    page = text(advocate_client.get("/me/profile"))
    assert "Profile 100% complete" in page and "Your profile is complete. Thank you!" in page
    assert "Still missing" not in page and "Missing:" not in text(advocate_client.get("/dashboard"))


def test_complete_profile_earns_points_once(app, advocate_client, advocate):
    t = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    db.session.rollback()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{t.id}": "y"}, page="/me/preferences")
    assert points.balance(db.session, advocate.id) == 0
    save_profile(advocate_client)
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == app.config["POINTS_PROFILE_COMPLETE"]
    save_profile(
        advocate_client, story="Another story, just as long as the first one was, and with outcomes in it too."
    )
    save_profile(advocate_client, linkedin_url="")
    save_profile(advocate_client)
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == app.config["POINTS_PROFILE_COMPLETE"]


# --- who may do what ------------------------------------------------------------------------------------------------


def test_an_advocate_only_ever_changes_their_own_profile(app, advocate_client, advocate, make_user):
    other = make_user(email="bob@example.com", name="Bob Other", job_title="CTO", company="Other Co")
    oc = app.test_client()
    login(oc, other.email)
    assert save_profile(oc, name="Bob Other", story="Bob's own story.").status_code == 302
    before = snapshot(other.id)
    # Ids in the form or the query string are ignored: the signed-in advocate is the only subject.
    resp = post_form(
        advocate_client,
        f"/me/profile?user_id={other.id}",
        profile_data(user_id=str(other.id), id=str(other.id), name="Ada Hacker"),
        page="/me/profile",
    )
    assert resp.status_code == 302
    assert snapshot(other.id) == before
    assert reload(User, advocate.id).name == "Ada Hacker"
    page = text(advocate_client.get(f"/me/profile?user_id={other.id}"))
    assert "Bob&#39;s own story." not in page and "Bob Other" not in page


@pytest.mark.parametrize("path", ["/me/profile", "/me/profile/confirm"])
def test_staff_and_admin_get_403(staff_client, admin_client, path):
    for c in (staff_client, admin_client):
        if path.endswith("confirm"):
            resp = post_form(c, path, {}, page="/")
        else:
            resp = c.get(path)
            assert c.post(path, data={}).status_code in (400, 403)
        assert resp.status_code == 403


def test_staff_post_to_profile_with_a_token_is_403_and_changes_nothing(staff_client, staff):
    resp = post_form(staff_client, "/me/profile", profile_data(name="Staff Hacker"), page="/")
    assert resp.status_code == 403
    assert reload(User, staff.id).name == "Sam Staff"
    assert db.session.get(AdvocateProfile, staff.id) is None


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/me/profile")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    assert "next=" in resp.headers["Location"]


def test_advocate_not_yet_approved_cannot_edit(app, make_user):
    pending = make_user(status=Status.PENDING, email="pending@example.com")
    c = app.test_client()
    login(c, pending.email)
    resp = c.get("/me/profile")
    assert resp.status_code == 302 and "/account/status" in resp.headers["Location"]


def test_reference_lists_are_seeded_and_seeding_is_idempotent(app, runner):
    n = {
        m.__name__: db.session.scalar(select(func.count()).select_from(m))
        for m in (Industry, Product, SizeBand, Region, Country, ActivityType)
    }
    assert n == {
        "Industry": len(lists.INDUSTRIES),
        "Product": len(lists.PRODUCTS),
        "SizeBand": len(lists.SIZE_BANDS),
        "Region": len(lists.REGIONS),
        "Country": sum(len(c) for c in lists.COUNTRIES.values()),
        "ActivityType": len(lists.ACTIVITY_TYPES),
    }
    assert n["Industry"] >= 20 and n["Country"] >= 60 and n["ActivityType"] == 13
    assert db.session.get(Country, "DE").region.name == "Europe"
    db.session.rollback()
    result = runner.invoke(args=["lists", "seed"])
    assert result.exit_code == 0 and "All default list items are present." in result.output
