"""Template globals and filters."""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_login import current_user

from portal.forms.auth import ConfirmForm


def register(app) -> None:
    @app.context_processor
    def inject():
        return {
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
