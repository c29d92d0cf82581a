"""Reference requests: a staff member asks for the right advocate for a deal, by a date.

Staff see and change only their own requests (another's is a 404); admins see all. The page shows the
request, its asks and the advocates matching it (``portal.services.matching``, rendered by
``staff/_reference_matches.html``); asking is for admins, and for the requester when the program lets
staff ask directly. Every action goes through ``portal.services.references`` (which audits it)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.forms.references import AskForm, CancelForm, OutcomeForm, ReferenceRequestForm, ScheduleForm
from portal.models import Industry, Product, ReferenceRequest, Region, Role, SizeBand, User
from portal.routing import MAX_ID
from portal.services import fatigue, lists, matching, profiles, references
from staff.views import bp

NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("staff.references_list", "Reference requests", ("staff.reference_new", "staff.reference_detail")),
]


def home_context(session: Session, user: User) -> dict:
    return {
        "request_reference_url": url_for("staff.reference_new"),
        "reference_requests": references.recent_for(session, user),
        "reference_requests_url": url_for("staff.references_list"),
    }


@bp.route("/references")
def references_list():
    page = request.args.get("page", 1, type=int) or 1
    found = references.list_for(db.session, current_user, page)
    return render_template(
        "staff/references.html",
        found=found,
        names=references.names_of(db.session, {rr.requester_id for rr in found.rows}),
    )


def _fill(form: ReferenceRequestForm) -> None:
    form.activity_type_id.choices = [(t.id, t.name) for t in profiles.activity_types(db.session)]
    for f, model in (
        (form.industry_id, Industry),
        (form.product_id, Product),
        (form.region_id, Region),
        (form.size_band_id, SizeBand),
    ):
        f.choices = [(0, "Any")] + [(i.id, i.name) for i in lists.offered(db.session, model)]
    form.topic_ids.choices = [(t.id, t.name) for t in references.topic_choices(db.session)]


def _new_page(form):
    return render_template("staff/reference_form.html", form=form)


@bp.route("/references/new", methods=["GET", "POST"])
@unit_of_work
def reference_new():
    form = ReferenceRequestForm()
    _fill(form)
    if form.validate_on_submit():
        refused_form(form, _new_page)
        rr = references.create(
            db.session,
            current_user,
            references.RequestInput(
                activity_type_id=form.activity_type_id.data,
                account_name=form.account_name.data or "",
                due_date=form.due_date.data,
                advocates_needed=form.advocates_needed.data or 1,
                industry_id=form.industry_id.data or None,
                product_id=form.product_id.data or None,
                region_id=form.region_id.data or None,
                size_band_id=form.size_band_id.data or None,
                topic_ids=list(form.topic_ids.data or []),
                need=form.need.data or "",
                crm_opportunity_id=form.crm_opportunity_id.data or "",
                deal_amount=form.deal_amount.data,
                currency=form.currency.data or "USD",
            ),
        )
        flash("Your request is in. You will be emailed at every step.", "success")
        return redirect(url_for("staff.reference_detail", rr_id=rr.id))
    return _new_page(form), 422 if request.method == "POST" else 200


def _visible(rr_id: int) -> ReferenceRequest:
    """The request if the current user may see it (their own; an admin: any), else a 404."""
    rr = db.get_or_404(ReferenceRequest, rr_id)
    if current_user.role != Role.ADMIN and rr.requester_id != current_user.id:
        abort(404)
    return rr


def _detail_url(rr_id: int) -> str:
    return url_for("staff.reference_detail", rr_id=rr_id)


@bp.route("/references/<int:rr_id>")
def reference_detail(rr_id):
    rr = _visible(rr_id)
    asks = references.asks(db.session, rr)
    can_ask = references.can_ask(db.session, current_user, rr)
    closed = rr.status in references.CLOSED_STATUSES
    matches = matching.Matches() if closed else matching.for_request(db.session, rr)
    return render_template(
        "staff/reference_detail.html",
        rr=rr,
        asks=asks,
        criteria=references.criteria(db.session, rr),
        names=references.names_of(db.session, {rr.requester_id} | {p.asked_by_id for p in asks}),
        advocates=references.names_of(db.session, {p.user_id for p in asks}),
        matches=matches,
        can_ask=can_ask,
        is_admin=current_user.role == Role.ADMIN,
        self_service=references.self_service(db.session),
        ask_form=AskForm(),
        schedule_form=ScheduleForm(timezone=rr.scheduled_tz or "UTC"),
        scheduled_at=references.shown_at(rr.scheduled_for, rr.scheduled_tz) if rr.scheduled_for else None,
        outcome_form=OutcomeForm(outcome=rr.outcome.value if rr.outcome else "won", final_amount=rr.final_amount),
        cancel_form=CancelForm(),
        confirm_form=ConfirmForm(),
        status_words=references.STATUS_WORDS,
    )


def _advocate_from(form: AskForm) -> User | None:
    if form.advocate_id.data:
        user = db.session.get(User, form.advocate_id.data) if form.advocate_id.data <= MAX_ID else None
    elif (form.email.data or "").strip():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    else:
        user = None
    return user if user is not None and user.role == Role.ADVOCATE else None


def _not_asked(err) -> str:
    if current_user.role == Role.ADMIN:
        return f"Not asked: {err.message} To ask anyway, give an override reason."
    return f"Not asked: {err.message}"


@bp.route("/references/<int:rr_id>/ask", methods=["POST"])
@unit_of_work
def reference_ask(rr_id):
    back = _detail_url(rr_id)
    form = AskForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash("Choose an advocate to ask.", "error")
        return redirect(back)
    rr = _visible(rr_id)
    if not references.can_ask(db.session, current_user, rr):
        abort(403)
    who = _advocate_from(form)
    if who is None:
        flash("No advocate has that email address or id.", "error")
        return redirect(back)
    refused_back_to(back, messages={fatigue.AskRefused: _not_asked})
    references.ask(db.session, current_user, rr.id, who.id, form.override_reason.data)
    flash(f"{who.name} has been asked; they have {references.ASK_DAYS} days to answer.", "success")
    return redirect(back)


@bp.route("/references/<int:rr_id>/<any(schedule, complete, outcome, cancel):step>", methods=["POST"])
@unit_of_work
def reference_action(rr_id, step):
    action = step
    _visible(rr_id)
    back = _detail_url(rr_id)
    form = {"schedule": ScheduleForm, "outcome": OutcomeForm, "cancel": CancelForm, "complete": ConfirmForm}[action]()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        for name, errors in form.errors.items():
            flash(f"{getattr(form, name).label.text}: {' '.join(errors)}", "error")
        return redirect(back)
    refused_back_to(back)
    if action == "schedule":
        references.schedule(db.session, current_user, rr_id, form.when.data, form.timezone.data)
        flash("Scheduled; the advocates have been emailed.", "success")
    elif action == "complete":
        references.complete(db.session, current_user, rr_id)
        flash("Completed; the advocates' points are credited. Record the outcome below.", "success")
    elif action == "outcome":
        references.record_outcome(db.session, current_user, rr_id, form.outcome.data, form.final_amount.data)
        flash("Outcome saved. Thank you!", "success")
    else:
        references.cancel(db.session, current_user, rr_id, form.reason.data or "")
        flash("The request is cancelled.", "success")
    return redirect(back)
