"""The profile as the program sees it: the advocate's "Preview my profile" page and the admins' advocate
page show every part of it (the story as paragraphs), escaped, with emoji and right-to-left text kept."""

from datetime import timedelta

import pytest
from markupsafe import Markup
from sqlalchemy import select

from portal.extensions import db
from portal.models import ActivityType, AdvocateProfile, Industry, Product, SizeBand, Status, utcnow
from portal.templating import paragraphs
from tests.support import TEST_PASSWORD, login, post_form, reload, save_profile, text

SCRIPT = '<script>alert("pwn")</script>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt;"


def first(model):
    value = db.session.scalar(select(model).where(model.active.is_(True)).order_by(model.position).limit(1))
    name, ident = value.name, value.id
    db.session.rollback()
    return ident, name


def fill(client, **over):
    industry, industry_name = first(Industry)
    size, size_name = first(SizeBand)
    product, product_name = first(Product)
    data = {
        "name": "Ada Advocate",
        "job_title": "CISO",
        "company": "Bluefin Bank",
        "industry_id": str(industry),
        "size_band_id": str(size),
        "country_code": "JP",
        "product_ids": [str(product)],
        "use_cases": "fraud detection",
        "topics": "zero trust",
        "story": "We cut fraud by half.\nIn one year.\n\nOnboarding took days, not weeks.",
        "linkedin_url": "https://www.linkedin.com/in/ada",
    }
    data.update(over)
    assert post_form(client, "/me/profile", data).status_code == 302
    speaking = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "speaking"))
    db.session.rollback()
    assert (
        post_form(
            client,
            "/me/preferences/activities",
            {f"opt_{speaking}": "y", f"note_{speaking}": over.get("note", "virtual events only")},
            page="/me/preferences",
        ).status_code
        == 302
    )
    start = utcnow().date() + timedelta(days=10)
    assert (
        post_form(
            client,
            "/me/availability/blackouts",
            {
                "starts_on": start.isoformat(),
                "ends_on": (start + timedelta(days=2)).isoformat(),
                "note": "private leave",
            },
            page="/me/availability",
        ).status_code
        == 302
    )
    assert (
        post_form(
            client,
            "/me/availability",
            {"max_asks_per_month": "2", "max_asks_per_quarter": "5", "timezone": "Asia/Tokyo"},
        ).status_code
        == 302
    )
    return {"industry": industry_name, "size": size_name, "product": product_name, "start": start}


# --- the paragraphs filter -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,html",
    [
        ("", ""),
        (None, ""),
        ("One line", '<p dir="auto">One line</p>'),
        ("a\nb", '<p dir="auto">a<br>\nb</p>'),
        ("a\r\nb\r\n\r\nc", '<p dir="auto">a<br>\nb</p>\n<p dir="auto">c</p>'),
        ("a\n\n\n\n  \nb", '<p dir="auto">a</p>\n<p dir="auto">b</p>'),
        ("\n\nfirst\n\n", '<p dir="auto">first</p>'),
        (
            f"{SCRIPT}\n\n<b>x</b> & y",
            f'<p dir="auto">{ESCAPED_SCRIPT}</p>\n<p dir="auto">&lt;b&gt;x&lt;/b&gt; &amp; y</p>',
        ),
        ("שלום 😀\n\nمرحبا", '<p dir="auto">שלום 😀</p>\n<p dir="auto">مرحبا</p>'),
    ],
)
def test_paragraphs_filter_escapes_and_splits(raw, html):
    out = paragraphs(raw)
    assert isinstance(out, Markup) and str(out) == html


def test_paragraphs_filter_is_registered(app):
    assert app.jinja_env.from_string("{{ s|paragraphs }}").render(s="a <i>\n\nb") == (
        '<p dir="auto">a &lt;i&gt;</p>\n<p dir="auto">b</p>'
    )


# --- the pages ---------------------------------------------------------------------------------------------------


def assert_whole_profile(page: str, facts: dict) -> None:
    for expected in (
        "Ada Advocate",
        "CISO",
        "Bluefin Bank",
        facts["industry"],
        facts["size"],
        "Japan",
        "Asia Pacific",
        facts["product"],
        "fraud detection",
        "zero trust",
        'href="https://www.linkedin.com/in/ada"',
        "Speaking",
        "virtual events only",
        "Available",
        "Confirmed today",
        "Asia/Tokyo",
        facts["start"].strftime("%d %b %Y"),
    ):
        assert expected in page, expected
    assert (
        '<p dir="auto">We cut fraud by half.<br>\nIn one year.</p>\n<p dir="auto">Onboarding took days, '
        "not weeks.</p>" in page
    )
    assert "private leave" not in page  # blackout notes are the advocate's own


def test_preview_shows_the_profile_as_staff_see_it(advocate_client, advocate):
    facts = fill(advocate_client)
    assert 'href="/me/profile/preview"' in text(advocate_client.get("/me/profile"))
    assert 'href="/me/profile/preview"' in text(advocate_client.get("/dashboard"))
    resp = advocate_client.get("/me/profile/preview")
    assert resp.status_code == 200
    assert_whole_profile(text(resp), facts)


def test_admin_sees_an_advocates_whole_profile(advocate_client, advocate, admin_client):
    facts = fill(advocate_client)
    resp = admin_client.get(f"/admin/advocates/{advocate.id}/profile")
    assert resp.status_code == 200
    page = text(resp)
    assert_whole_profile(page, facts)
    assert advocate.email in page


def test_a_fresh_advocate_without_a_profile_can_be_shown(admin_client, make_user):
    new = make_user(email="new@example.com", name="New Person")
    page = text(admin_client.get(f"/admin/advocates/{new.id}/profile"))
    assert "New Person" in page and "No story yet." in page and "No activities chosen yet." in page
    assert "Never confirmed" in page


def test_html_is_escaped_and_emoji_and_right_to_left_text_kept(advocate_client, advocate, admin_client):
    name = "דנה כהן 😀👩\u200d💻"
    story = f"مرحبا بالعالم 🌍\n{SCRIPT}\n\n\u200fשלום עולם — café naïve <b onmouseover=alert(1)>bold</b>"
    fill(
        advocate_client,
        name=name,
        job_title=f"CISO {SCRIPT}",
        company="חברה 🚀",
        story=story,
        topics="אבטחת מידע, <i>x</i>",
        note=f"only {SCRIPT}",
    )
    for page in (
        text(advocate_client.get("/me/profile/preview")),
        text(admin_client.get(f"/admin/advocates/{advocate.id}/profile")),
        text(admin_client.get(f"/search/advocates/{advocate.id}")),
    ):
        assert SCRIPT not in page and "<b onmouseover" not in page and "<i>x</i>" not in page
        assert f"CISO {ESCAPED_SCRIPT}" in page and f"only {ESCAPED_SCRIPT}" in page
        assert name in page and "חברה 🚀" in page and "אבטחת מידע" in page
        assert f'<p dir="auto">مرحبا بالعالم 🌍<br>\n{ESCAPED_SCRIPT}</p>' in page
        assert "\u200fשלום עולם — café naïve &lt;b onmouseover=alert(1)&gt;bold&lt;/b&gt;</p>" in page
        assert f'<h2 id="h-card-name" dir="auto">{name}</h2>' in page


def test_only_admins_see_the_advocate_page(app, advocate_client, advocate, staff_client, client, make_user):
    other = make_user(email="other@example.com", name="Other Advocate")
    path = f"/admin/advocates/{advocate.id}/profile"
    assert advocate_client.get(path).status_code == 403
    assert advocate_client.get(f"/admin/advocates/{other.id}/profile").status_code == 403
    assert staff_client.get(path).status_code == 403  # the admin area is for admins
    resp = client.get(path)
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_the_advocate_page_is_only_for_advocates_who_exist(app, admin_client, admin, staff, make_user):
    pending = make_user(status=Status.PENDING, email="pending@example.com", name="Pending Person")
    assert admin_client.get(f"/admin/advocates/{pending.id}/profile").status_code == 200
    for user_id in (staff.id, admin.id, 999_999, 2**31 - 1, 2**31, 0):
        assert admin_client.get(f"/admin/advocates/{user_id}/profile").status_code == 404, user_id
    assert admin_client.get("/admin/advocates/abc/profile").status_code == 404
    gone = make_user(email="gone@example.com", name="Gone Person")
    c = app.test_client()
    login(c, gone.email)
    assert post_form(c, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"}).status_code == 302
    assert admin_client.get(f"/admin/advocates/{gone.id}/profile").status_code == 404


def test_preview_is_for_advocates(staff_client, admin_client, client):
    for c in (staff_client, admin_client):
        assert c.get("/me/profile/preview").status_code == 403
    resp = client.get("/me/profile/preview")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_the_preview_is_always_the_signed_in_advocates_own(app, advocate_client, advocate, make_user):
    fill(advocate_client)
    other = make_user(email="eve@example.com", name="Eve Other")
    oc = app.test_client()
    login(oc, other.email)
    page = text(oc.get(f"/me/profile/preview?user_id={advocate.id}"))
    assert "Eve Other" in page and "Bluefin" not in page and "Ada Advocate" not in page


# --- the community directory (there is none yet) -------------------------------------------------------------


def test_there_is_no_directory_switch_while_there_is_no_directory(advocate_client, advocate):
    """Settings that do nothing are not shown (issue 16); saving leaves the stored choice as it was."""
    page = text(advocate_client.get("/me/profile"))
    assert "directory" not in page.lower()
    assert save_profile(advocate_client, show_in_directory=None).status_code == 302
    assert reload(AdvocateProfile, advocate.id).show_in_directory is True


def test_staff_open_an_advocates_profile_from_the_search(app, advocate_client, advocate, staff_client):
    facts = fill(advocate_client)
    from search.indexing import apply_pending

    apply_pending(db.engine)
    results = text(staff_client.get("/search/advocates?q=fraud"))
    assert f'href="/search/advocates/{advocate.id}"' in results
    resp = staff_client.get(f"/search/advocates/{advocate.id}")
    assert resp.status_code == 200
    assert_whole_profile(text(resp), facts)


def test_the_staff_profile_page_is_for_staff_and_active_advocates(
    app, advocate_client, advocate, staff_client, admin_client, client, staff, make_user
):
    path = f"/search/advocates/{advocate.id}"
    assert advocate_client.get(path).status_code == 403
    resp = client.get(path)
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    pending = make_user(status=Status.PENDING, email="pending2@example.com", name="Pending Two")
    suspended = make_user(status=Status.SUSPENDED, email="suspended2@example.com", name="Suspended Two")
    for user_id in (pending.id, suspended.id, staff.id, 999_999, 2**31):
        assert staff_client.get(f"/search/advocates/{user_id}").status_code == 404, user_id
    assert admin_client.get(f"/search/advocates/{pending.id}").status_code == 200  # admins see every advocate
