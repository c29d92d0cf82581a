from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from admin import navigation
from admin.forms import ApproveForm, AuditFilterForm, DeclineForm
from portal.errors import refused_back_to, unit_of_work
from portal.exports import csv_response
from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.models import AuditEvent, User, utcnow
from portal.routing import MAX_ID
from portal.security import admin_required
from portal.services import accounts, audit, queues

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.app_context_processor(navigation.inject)  # app-wide: the search index page uses the admin layout too


@bp.before_request
@admin_required
def guard():
    return None


@bp.route("/")
def index():
    counts = accounts.count_by_status(db.session)
    recent = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all()
    now = utcnow()
    return render_template(
        "admin/index.html",
        counts=counts,
        recent=recent,
        queues=queues.today(db.session, now),
        now=now,
        service_level=queues.service_level_days(db.session),
    )


@bp.route("/pending")
def pending():
    found = accounts.waiting_for_approval(db.session, request.args.get("page", 1, type=int) or 1)
    return render_template(
        "admin/pending.html",
        found=found,
        users=found.rows,
        approve_form=ApproveForm(),
        decline_form=DeclineForm(),
        bulk_form=ConfirmForm(),
    )


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


@bp.route("/pending/approve-selected", methods=["POST"])
@unit_of_work
def approve_selected():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        ids = [int(v) for v in request.form.getlist("user_id")]
    except ValueError:
        abort(400)
    ids = [i for i in ids if 0 < i <= MAX_ID]
    if not ids:
        flash("Select the applicants to approve first.", "error")
        return redirect(url_for("admin.pending"))
    if len(ids) > accounts.APPROVE_AT_ONCE:
        flash(f"Approve at most {accounts.APPROVE_AT_ONCE} at once.", "error")
        return redirect(url_for("admin.pending"))
    approved, skipped = accounts.approve_many(db.session, ids, current_user.id)
    message = f"Approved {len(approved)} applicant{'s' if len(approved) != 1 else ''}; each has been emailed."
    if skipped:
        message += f" {skipped} skipped: already decided, or not waiting."
    flash(message, "success" if approved else "error")
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


def _audit_filters() -> tuple[AuditFilterForm, audit.AuditQuery | None]:
    """The filters from the URL; None when they are invalid (the form says why)."""
    form = AuditFilterForm(request.args)
    if request.args and not form.validate():
        return form, None
    return form, audit.AuditQuery(
        actor=form.actor.data or "",
        action=form.action.data or "",
        target_type=form.target_type.data or "",
        target_id=form.target_id.data,
        since=form.since.data,
        until=form.until.data,
    )


@bp.route("/audit")
def audit_log():
    form, query = _audit_filters()
    found = audit.find(db.session, query, request.args.get("page", 1, type=int) or 1) if query else None
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/audit.html",
        form=form,
        found=found,
        filters=filters,
        actions=audit.actions(db.session),
        export_form=ConfirmForm(),
    ), (200 if query else 422)


@bp.route("/audit/export", methods=["POST"])
@unit_of_work
def audit_export():
    """The filtered log as CSV (streamed); the export is itself an audited action."""
    form, query = _audit_filters()
    if query is None:
        flash("The filters are not valid: see the form.", "error")
        return redirect(url_for("admin.audit_log", **request.args))
    # Committed by unit_of_work when this returns, before the first row is streamed.
    audit.record(db.session, "audit.export", current_user.id, None, filters=dict(request.args))
    name = f"audit-log-{utcnow():%Y%m%d-%H%M%S}.csv"
    return csv_response(name, audit.EXPORT_HEADER, audit.export_rows(db.session, query))
