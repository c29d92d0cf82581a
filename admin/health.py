"""The health page: what IT checks first (admins; the admin blueprint's guard applies). GET only."""

from __future__ import annotations

from flask import current_app, render_template

from admin.views import bp
from portal.extensions import db
from portal.services import health as facts
from search import service as search_service


@bp.route("/health")
def health():
    config = current_app.config
    return render_template(
        "admin/health.html",
        environment=config["PORTAL_ENV"],
        limits=facts.rate_limits(config),
        database=facts.database(db.session),
        outbox=facts.outbox(db.session),
        index=search_service.health(db.session),
    )
