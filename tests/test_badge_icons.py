"""Badge icons do not depend on an emoji font (issue 16): every default badge is drawn from an SVG shipped in
static/img/badges/, inline so it takes the page's colours, and the pages carry no emoji for them."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from portal.extensions import db
from portal.models import Badge, User
from portal.services import badges

ICONS = Path(__file__).resolve().parent.parent / "static" / "img" / "badges"
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def test_every_default_icon_has_its_own_svg_file():
    icons = [icon for *_, icon, _rule in badges.DEFAULT_BADGES] + list(badges.FIRST_OF_TYPE_ICONS.values())
    for icon in icons:
        name = badges.icon_file(icon)
        assert (ICONS / f"{name}.svg").is_file(), (icon, name)
    # Each default badge its own picture (a star only where the emoji is a star), not one fallback for all.
    assert len({badges.icon_file(i) for i in icons}) >= 15
    assert badges.icon_file("🦄") == badges.DEFAULT_ICON_FILE and (ICONS / "star.svg").is_file()
    assert (ICONS / "LICENSE-lucide.txt").is_file()


def test_the_badge_page_and_the_dashboard_draw_svg_not_emoji(app, advocate, advocate_client):
    first = db.session.scalar(select(Badge).where(Badge.key == "first-activity"))
    badges.grant_manual(db.session, db.session.get(User, advocate.id), first.id, advocate.id, "test")
    db.session.commit()
    page = advocate_client.get("/me/badges").get_data(as_text=True)
    gallery = page[page.index('<ul class="badge-gallery">') :]
    assert gallery.count('<svg aria-hidden="true" focusable="false" class="badge-icon"') >= len(badges.DEFAULT_BADGES)
    assert not EMOJI.search(gallery) and "<!--" not in gallery
    dashboard = advocate_client.get("/dashboard").get_data(as_text=True)
    row = re.search(r'<p class="badge-row">(.*?)</p>', dashboard, re.S).group(1)
    assert 'class="badge-mini-icon"' in row and "First step" in row and not EMOJI.search(row)
