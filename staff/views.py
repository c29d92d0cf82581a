"""The staff workspace's blueprint, its guard and its home page."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.extensions import db
from portal.security import staff_required
from staff import navigation

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.context_processor(navigation.inject)


@bp.before_request
@staff_required
def guard():
    return None


@bp.route("/")
def home():
    """My nominations, my reference requests (everyone's for an admin), and the two things to do here."""
    user = current_user._get_current_object()
    context: dict = {}
    for part in navigation.PARTS:
        context.update(part.home_context(db.session, user))
    return render_template("staff/home.html", **context)
