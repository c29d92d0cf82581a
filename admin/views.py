from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from admin.forms import ApproveForm, DeclineForm
from portal.errors import refused_back_to, unit_of_work
from portal.extensions import db
from portal.models import AuditEvent, Role, Status, User
from portal.routing import MAX_ID
from portal.security import admin_required
from portal.services import accounts

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def guard():
    return None


@bp.route("/")
def index():
    counts = accounts.count_by_status(db.session)
    recent = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all()
    return render_template("admin/index.html", counts=counts, recent=recent)


@bp.route("/pending")
def pending():
    users = db.session.scalars(
        select(User).where(User.status == Status.PENDING, User.role == Role.ADVOCATE).order_by(User.created_at)
    ).all()
    return render_template("admin/pending.html", users=users, approve_form=ApproveForm(), decline_form=DeclineForm())


def _target(form) -> User:
    try:
        user_id = int(form.user_id.data)
    except (TypeError, ValueError):
        abort(400)
    if not 0 < user_id <= MAX_ID:
        abort(404)
    return db.get_or_404(User, user_id)


@bp.route("/pending/approve", methods=["POST"])
@unit_of_work
def approve():
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    user = _target(form)
    refused_back_to(url_for("admin.pending"))
    accounts.approve(db.session, user, actor_id=current_user.id)
    flash(f"{user.name} is approved and has been emailed.", "success")
    return redirect(url_for("admin.pending"))


@bp.route("/pending/decline", methods=["POST"])
@unit_of_work
def decline():
    form = DeclineForm()
    if not form.validate_on_submit():
        abort(400)
    user = _target(form)
    refused_back_to(url_for("admin.pending"))
    accounts.reject(db.session, user, actor_id=current_user.id, reason=form.reason.data or "")
    flash(f"{user.name}'s application is declined.", "success")
    return redirect(url_for("admin.pending"))


@bp.route("/audit")
def audit_log():
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    actors = {
        u.id: u
        for u in db.session.scalars(select(User).where(User.id.in_({e.actor_id for e in events if e.actor_id}))).all()
    }
    return render_template("admin/audit.html", events=events, actors=actors)
