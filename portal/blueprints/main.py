"""The public landing page, the signed-in home and the account-status page."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required

from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.models import ACTIVE_STATUSES, Role, Status
from portal.security import login_required_active
from portal.services import badges, fatigue, opportunities, participation, points, profiles

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    return render_template("main/index.html")


@bp.route("/terms")
def terms():
    """The program terms people accept when they join (the version they accept is recorded with their consent)."""
    return render_template("main/terms.html", version=current_app.config["TERMS_VERSION"])


@bp.route("/privacy")
def privacy_notice():
    return render_template("main/privacy_notice.html")


@bp.route("/dashboard")
@login_required_active
def dashboard():
    if current_user.role == Role.ADMIN:
        return redirect(url_for("admin.index"))
    if current_user.role == Role.STAFF:
        return redirect(url_for("staff.home"))
    profile = profiles.read_profile(db.session, current_user._get_current_object())
    return render_template(
        "main/dashboard.html",
        profile=profile,
        completeness=profiles.completeness(current_user, profile),
        availability=fatigue.availability(profile),
        freshness_days=profiles.freshness_days(profile),
        stale=profiles.is_stale(profile),
        stale_after=profiles.stale_days(),
        confirm_form=ConfirmForm(),
        balance=points.balance(db.session, current_user.id),
        level=points.level_for(points.lifetime_earned(db.session, current_user.id)),
        earned_badges=[b for b, mine in badges.gallery(db.session, current_user.id) if mine],
        commitments=[p for p in participation.of_user(db.session, current_user.id) if p.status in ACTIVE_STATUSES],
        recommended=opportunities.feed(db.session, current_user)[:3],
    )


@bp.route("/account/status")
@login_required
def account_status():
    if current_user.status == Status.ACTIVE:
        return redirect(url_for("main.dashboard"))
    return render_template("main/account_status.html", form=ConfirmForm())


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}
