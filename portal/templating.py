"""Template globals and filters."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from flask import current_app, has_request_context, url_for
from flask_login import current_user
from markupsafe import Markup, escape

from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.services import badges
from portal.services.profiles import is_stale, read_profile


def _stale_profile() -> bool:
    """True when the signed-in advocate's profile needs confirming (shown as a banner on every page)."""
    if not (current_user.is_authenticated and current_user.is_advocate and current_user.is_approved):
        return False
    # No profile row yet (activated before profiles were created at activation): counted from approval.
    return is_stale(read_profile(db.session, current_user._get_current_object()))


_BLANK_LINE = re.compile(r"\n[ \t\u00a0]*\n\s*")


def paragraphs(value) -> Markup:
    """Plain text as HTML: escaped, blank lines -> paragraphs, single line breaks -> <br>.

    Each paragraph gets ``dir="auto"`` so right-to-left text reads the right way round."""
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return Markup("")
    out = []
    for para in _BLANK_LINE.split(text):
        lines = [escape(line) for line in para.strip("\n").split("\n")]
        out.append(Markup('<p dir="auto">') + Markup("<br>\n").join(lines) + Markup("</p>"))
    return Markup("\n").join(out)


@lru_cache(maxsize=64)
def _svg(static_folder: str, name: str) -> str:
    """An icon's SVG from static/img/badges/, without its licence comment and its own class."""
    text = (Path(static_folder) / "img" / "badges" / f"{name}.svg").read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    return re.sub(r'\s*class="[^"]*"', "", text, count=1).strip()


def register(app) -> None:
    @app.context_processor
    def inject():
        if not has_request_context():  # emails rendered by CLI commands
            return {"site_name": current_app.config["SITE_NAME"], "company_name": current_app.config["COMPANY_NAME"]}
        return {
            "stale_profile": _stale_profile(),
            "site_name": current_app.config["SITE_NAME"],
            "company_name": current_app.config["COMPANY_NAME"],
            "logout_form": ConfirmForm() if current_user.is_authenticated else None,
            "terms_url": current_app.config.get("TERMS_URL") or url_for("main.terms"),
            "privacy_url": current_app.config.get("PRIVACY_URL") or url_for("main.privacy_notice"),
            "contact_email": current_app.config.get("CONTACT_EMAIL"),
        }

    @app.template_filter("dt")
    def format_dt(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> str:
        return value.strftime(fmt) if value else "—"

    app.add_template_filter(paragraphs, "paragraphs")

    @app.template_global("badge_icon")
    def badge_icon(icon: str | None, cls: str = "badge-icon") -> Markup:
        """A badge's icon drawn inline (it takes the text colour), hidden from screen readers: the name says it."""
        svg = _svg(current_app.static_folder, badges.icon_file(icon))
        return Markup(svg.replace("<svg", f'<svg aria-hidden="true" focusable="false" class="{escape(cls)}"', 1))

    @app.template_filter("label")
    def enum_label(value) -> str:
        raw = getattr(value, "value", value) or ""
        return str(raw).replace("_", " ").capitalize()
