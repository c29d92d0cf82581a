"""Words and wayfinding (issue 16): every navigation marks the page you are on, "Account" opens the
privacy and account page, the registration form links the terms it asks people to accept, the footer
links privacy, terms and (when configured) the program team, and a staff member refused an admin page
sees the portal's layout, not the admin navigation they cannot use."""

from __future__ import annotations

import re

import pytest
from flask import url_for

from tests.support import client_for

NAV = re.compile(r'<nav id="site-nav"[^>]*>(.*?)</nav>', re.S)


def current_links(html: str) -> list[tuple[str, str]]:
    """(href, text) of the links of the main navigation marked as the current page."""
    nav = NAV.search(html)
    assert nav, html[:1500]
    return [
        (href, text.strip())
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*aria-current="page"[^>]*>([^<]+)</a>', nav.group(1))
    ]


@pytest.mark.parametrize(
    ("path", "marked"),
    [
        ("/dashboard", "My dashboard"),
        ("/opportunities", "Opportunities"),
        ("/me/commitments", "Opportunities"),
        ("/me/profile", "My profile"),
        ("/me/availability", "My profile"),
        ("/me/points", "Points"),
        ("/rewards", "Rewards"),
        ("/leaderboard", "Leaderboard"),
        ("/me/privacy", "Account"),
        ("/account/password", "Account"),
    ],
)
def test_the_advocates_navigation_marks_the_page_they_are_on(app, advocate_client, path, marked):
    resp = advocate_client.get(path, follow_redirects=True)
    assert resp.status_code == 200, path
    assert [text for _, text in current_links(resp.get_data(as_text=True))] == [marked]


def test_pages_outside_the_navigation_mark_nothing_and_visitors_see_theirs(app, client, staff_client):
    assert current_links(client.get("/auth/login").get_data(as_text=True)) == [("/auth/login", "Sign in")]
    assert current_links(client.get("/auth/register").get_data(as_text=True)) == [
        ("/auth/register", "Join the program")
    ]
    assert current_links(client.get("/terms").get_data(as_text=True)) == []
    assert [t for _, t in current_links(staff_client.get("/search/advocates").get_data(as_text=True))] == [
        "Find advocates"
    ]


def test_account_opens_the_privacy_and_account_page_for_advocates(app, advocate_client, staff_client):
    nav = NAV.search(advocate_client.get("/dashboard").get_data(as_text=True)).group(1)
    assert re.search(r'<a href="/me/privacy"[^>]*>Account</a>', nav)
    staff_nav = NAV.search(staff_client.get("/staff/").get_data(as_text=True)).group(1)
    assert re.search(r'<a href="/account/password"[^>]*>Account</a>', staff_nav)  # staff have no profile pages


def test_registration_links_the_terms_and_the_footer_links_privacy_terms_and_contact(app, client):
    html = client.get("/auth/register").get_data(as_text=True)
    assert re.search(r'read the <a href="/terms">program terms</a>', html)
    footer = html[html.index('<footer class="site-footer">') :]
    assert 'href="/privacy"' in footer and 'href="/terms"' in footer and "mailto:" not in footer
    terms = client.get("/terms")
    assert terms.status_code == 200 and f"Version {app.config['TERMS_VERSION']}" in terms.get_data(as_text=True)
    assert '<a href="/terms" aria-current="page">Program terms</a>' in terms.get_data(as_text=True)  # footer
    assert client.get("/privacy").status_code == 200

    app.config.update(
        CONTACT_EMAIL="advocacy@example.com", TERMS_URL="https://example.com/legal/advocates?v=2", PRIVACY_URL=None
    )
    html = client.get("/").get_data(as_text=True)
    footer = html[html.index('<footer class="site-footer">') :]
    assert 'href="mailto:advocacy@example.com"' in footer
    assert 'href="https://example.com/legal/advocates?v=2"' in footer and 'href="/privacy"' in footer


def test_a_staff_member_refused_an_admin_page_sees_the_portals_layout(app, staff, admin):
    staff_client = client_for(app, staff.id)
    resp = staff_client.get("/admin/advocates")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "You do not have access to this page" in html
    assert re.findall(r'href="(/admin[^"]*)"', html) == []  # not one link into the admin area
    assert 'aria-label="Main"' in html and 'aria-label="Admin"' not in html
    missing = client_for(app, admin.id).get("/admin/opportunities/999999")
    assert missing.status_code == 404 and 'aria-label="Admin"' in missing.get_data(as_text=True)  # admins keep theirs


def _title(html: str) -> str:
    return re.search(r"<title>([^<·]+)·", html).group(1).strip()


def _h1(html: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1)).strip()


def test_every_admin_navigation_link_says_the_title_of_the_page_it_opens(app, admin_client):
    """What you click is what you land on: each section of the admin bar, and each page of a section's
    own bar, is named as the page it opens (its title or its heading), and that page marks it."""
    from admin.navigation import SECTIONS

    wrong = []
    for section in SECTIONS:
        for endpoint, label in ((section.endpoint, section.label), *section.pages):
            with app.test_request_context():
                url = url_for(endpoint)
            resp = admin_client.get(url)
            html = resp.get_data(as_text=True)
            if resp.status_code != 200 or label not in (_title(html), _h1(html)):
                wrong.append((label, url, resp.status_code, _title(html), _h1(html)))
                continue
            admin_bar = re.search(r'aria-label="Admin">(.*?)</nav>', html, re.S).group(1)
            marked = re.findall(r'<a href="[^"]+" aria-current="(?:page|true)">([^<]+)</a>', admin_bar)
            if marked != [section.label]:
                wrong.append((label, url, "marks", marked))
            if section.pages:
                bar = re.search(
                    rf'class="subnav section-nav container" aria-label="{section.label}">(.*?)</nav>', html, re.S
                )
                here = re.findall(r'aria-current="page">([^<]+)</a>', bar.group(1)) if bar else None
                if here != [label]:
                    wrong.append((label, url, "section bar marks", here))
    assert wrong == []
    assert len(SECTIONS) <= 8  # the bar holds one row at 1280 px (the browser test measures it)


def test_a_page_inside_a_section_marks_its_section(app, admin_client, advocate):
    html = admin_client.get(f"/admin/advocates/{advocate.id}/profile").get_data(as_text=True)
    admin_bar = re.search(r'aria-label="Admin">(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r'aria-current="(?:page|true)">([^<]+)</a>', admin_bar) == ["Advocates"]
    assert 'aria-current="true">Advocates' in admin_bar  # in the section, not on its first page
