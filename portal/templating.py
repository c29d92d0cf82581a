"""Template globals and filters."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, has_request_context
from flask_login import current_user

from portal.forms.auth import ConfirmForm


def _stale_profile() -> bool:
    """True when the signed-in advocate's profile needs confirming (shown as a banner on every page)."""
    if not (current_user.is_authenticated and current_user.is_advocate and current_user.is_approved):
        return False
    from portal.extensions import db
    from portal.models import AdvocateProfile
    from portal.services.profiles import is_stale

    profile = db.session.get(AdvocateProfile, current_user.id)
    return profile is None or is_stale(profile)


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
        }

    @app.template_filter("dt")
    def format_dt(value: datetime | None, fmt: str = "%d %b %Y, %H:%M UTC") -> str:
        return value.strftime(fmt) if value else "—"

    @app.template_filter("label")
    def enum_label(value) -> str:
        raw = getattr(value, "value", value) or ""
        return str(raw).replace("_", " ").capitalize()
