"""Admin pages: opportunities, participants and decisions, boards, fatigue policy, advocates."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.forms.opportunities import AddAdvocateForm, DecisionForm, OpportunityForm, StatusForm
from portal.models import (
    ActivityType,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    Region,
    Role,
    SizeBand,
    User,
    utcnow,
)
from portal.routing import MAX_ID
from portal.services import fatigue, lists, opportunities, participation, profiles


def _fill(form: OpportunityForm, opp: Opportunity | None = None) -> None:
    """The pickers offer the active items, and the retired ones the opportunity already targets."""
    form.activity_type_id.choices = [(t.id, t.name) for t in profiles.activity_types(db.session)]
    for field, model, attr in (
        (form.industry_ids, Industry, "industries"),
        (form.product_ids, Product, "products"),
        (form.region_ids, Region, "regions"),
        (form.size_band_ids, SizeBand, "size_bands"),
    ):
        keep = [i.id for i in getattr(opp, attr)] if opp is not None else []
        field.choices = [(i.id, i.name) for i in lists.offered(db.session, model, keep)]


def _input(form: OpportunityForm) -> opportunities.OpportunityInput:
    return opportunities.OpportunityInput(
        activity_type_id=form.activity_type_id.data,
        title=form.title.data or "",
        description=form.description.data or "",
        capacity=form.capacity.data,
        points=form.points.data,
        event_date=form.event_date.data,
        deadline=form.deadline.data,
        is_virtual=form.is_virtual.data,
        location=form.location.data or "",
        external_url=form.external_url.data or "",
        selection_mode=form.selection_mode.data or "selection",
        term_start=form.term_start.data,
        term_end=form.term_end.data,
        industry_ids=form.industry_ids.data or [],
        product_ids=form.product_ids.data or [],
        region_ids=form.region_ids.data or [],
        size_band_ids=form.size_band_ids.data or [],
    )


@bp.route("/opportunities")
def opportunities_list():
    status = request.args.get("status") or None
    if status not in (None, *[s.value for s in OpportunityStatus]):
        status = None
    waiting_only = request.args.get("waiting") == "1"
    found = opportunities.admin_list(
        db.session, status, waiting_only=waiting_only, page=request.args.get("page", 1, type=int) or 1
    )
    counts = dict(
        db.session.execute(
            select(Participation.opportunity_id, func.count())
            .where(
                Participation.status == ParticipationStatus.REQUESTED,
                Participation.opportunity_id.in_([o.id for o in found.rows]),
            )
            .group_by(Participation.opportunity_id)
        ).all()
    )
    return render_template(
        "admin/opportunities.html",
        found=found,
        items=found.rows,
        status=status,
        waiting_only=waiting_only,
        waiting=counts,
        statuses=[s.value for s in OpportunityStatus],
    )


def _opportunity_page(form, opp=None):
    return render_template("admin/opportunity_form.html", form=form, opp=opp)


@bp.route("/opportunities/new", methods=["GET", "POST"])
@unit_of_work
def opportunity_new():
    form = OpportunityForm()
    _fill(form)
    if form.validate_on_submit():
        refused_form(form, _opportunity_page)
        opp = opportunities.create(db.session, _input(form), current_user.id)
        flash(f"Draft saved. Open it when it is ready: {opp.title}", "success")
        return redirect(url_for("admin.opportunity_detail", opp_id=opp.id))
    return _opportunity_page(form), 422 if request.method == "POST" else 200


@bp.route("/opportunities/<int:opp_id>/edit", methods=["GET", "POST"])
@unit_of_work
def opportunity_edit(opp_id):
    opp = db.get_or_404(Opportunity, opp_id)
    form = OpportunityForm(obj=opp if request.method == "GET" else None)
    _fill(form, opp)
    if request.method == "GET":
        form.selection_mode.data = opp.selection_mode.value
        form.industry_ids.data = [i.id for i in opp.industries]
        form.product_ids.data = [i.id for i in opp.products]
        form.region_ids.data = [i.id for i in opp.regions]
        form.size_band_ids.data = [i.id for i in opp.size_bands]
    elif form.validate_on_submit():
        refused_form(form, partial(_opportunity_page, opp=opp))
        opportunities.update(db.session, opp, _input(form), current_user.id)
        flash("Saved.", "success")
        return redirect(url_for("admin.opportunity_detail", opp_id=opp.id))
    return _opportunity_page(form, opp), 422 if request.method == "POST" else 200


@bp.route("/opportunities/<int:opp_id>/duplicate", methods=["POST"])
@unit_of_work
def opportunity_duplicate(opp_id):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    copy = opportunities.duplicate(db.session, db.get_or_404(Opportunity, opp_id), current_user.id)
    flash("A draft copy was made; adjust it and open it.", "success")
    return redirect(url_for("admin.opportunity_edit", opp_id=copy.id))


@bp.route("/opportunities/<int:opp_id>/status", methods=["POST"])
@unit_of_work
def opportunity_status(opp_id):
    form = StatusForm()
    opp = db.get_or_404(Opportunity, opp_id)
    if not form.validate_on_submit():
        abort(400)
    try:
        new_status = OpportunityStatus(form.status.data)
    except ValueError:
        abort(400)
    back = url_for("admin.opportunity_detail", opp_id=opp.id)
    refused_back_to(back)
    opportunities.set_status(db.session, opp, new_status, current_user.id)
    flash(f"The opportunity is now {opp.status.value}.", "success")
    return redirect(back)


@bp.route("/opportunities/<int:opp_id>")
def opportunity_detail(opp_id):
    opp = db.get_or_404(Opportunity, opp_id)
    wanted = request.args.get("status") or ""
    shown = ParticipationStatus(wanted) if wanted in {s.value for s in ParticipationStatus} else None
    listed = opportunities.participants_page(db.session, opp.id, shown, request.args.get("page", 1, type=int) or 1)
    status_of = fatigue.statuses(db.session, [p.user_id for p in listed.rows])
    return render_template(
        "admin/opportunity.html",
        opp=opp,
        people=listed.rows,
        listed=listed,
        shown=shown,
        participation_statuses=list(ParticipationStatus),
        status_of=status_of,
        decision_form=DecisionForm(),
        confirm_form=ConfirmForm(),
        status_form=StatusForm(),
        add_form=AddAdvocateForm(),
        transitions=sorted(s.value for s in opportunities.TRANSITIONS[opp.status]),
    )


def _flash_errors(form) -> None:
    """A refused small form on the opportunity page: its errors as messages (a bad CSRF token stays a 400)."""
    if "csrf_token" in form.errors:
        abort(400)
    for name, errors in form.errors.items():
        label = getattr(form, name).label.text
        for error in errors:
            flash(f"{label}: {error}", "error")


def _find_advocate(value: str) -> User | None:
    value = (value or "").strip()
    if value.isdigit():
        user = db.session.get(User, int(value)) if 0 < int(value) <= MAX_ID else None
    else:
        user = db.session.scalar(select(User).where(func.lower(User.email) == value.lower()))
    return user if user is not None and user.role == Role.ADVOCATE else None


@bp.route("/opportunities/<int:opp_id>/add", methods=["POST"])
@unit_of_work
def opportunity_add_advocate(opp_id):
    opp = db.get_or_404(Opportunity, opp_id)
    form = AddAdvocateForm()
    back = url_for("admin.opportunity_detail", opp_id=opp.id)
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(back)
    who = _find_advocate(form.advocate.data)
    if who is None:
        flash("No advocate has that email address or id.", "error")
        return redirect(back)
    name = who.name
    refused_back_to(
        back,
        messages={
            fatigue.AskRefused: lambda err: f"Not added: {err.message} To add {name} anyway, give an override reason."
        },
    )
    participation.add_by_admin(
        db.session, opp.id, who.id, current_user, form.override_reason.data, form.message.data or ""
    )
    flash(f"{name} is in; they have been emailed.", "success")
    return redirect(back)


def _not_approved(err) -> str:
    return "Not approved: " + err.message + " To approve anyway, give an override reason."


@bp.route("/participations/<int:participation_id>/<any(approve, decline, complete, no_show):action>", methods=["POST"])
@unit_of_work
def participation_action(participation_id, action):
    form = DecisionForm()
    p = db.get_or_404(Participation, participation_id)
    back = url_for("admin.opportunity_detail", opp_id=p.opportunity_id)
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(back)
    refused_back_to(back, messages={fatigue.AskRefused: _not_approved})
    if action == "approve":
        participation.approve(db.session, p.id, current_user, form.message.data or "", form.override_reason.data)
    elif action == "decline":
        participation.decline(db.session, p.id, current_user, form.message.data or "")
    elif action == "complete":
        participation.complete(db.session, p.id, current_user)
    else:
        participation.no_show(db.session, p.id, current_user)
    flash(
        {
            "approve": "Approved; the advocate has been emailed.",
            "decline": "Declined; the advocate has been emailed.",
            "complete": "Completed; points credited and the advocate emailed.",
            "no_show": "Marked as a no-show.",
        }[action],
        "success",
    )
    return redirect(back)


@bp.route("/boards")
def boards():
    today = utcnow().date()
    board_opps = list(
        db.session.scalars(
            select(Opportunity)
            .join(ActivityType)
            .where(ActivityType.key == "advisory_board", Opportunity.status != OpportunityStatus.DRAFT)
            .order_by(Opportunity.term_start.desc())
        )
    )
    rosters = opportunities.rosters(db.session, [opp.id for opp in board_opps])
    renewal_cutoff = today + timedelta(days=60)
    status_of = fatigue.statuses(db.session, [p.user_id for roster in rosters.values() for p in roster])
    return render_template(
        "admin/boards.html",
        boards=board_opps,
        rosters=rosters,
        today=today,
        renewal_cutoff=renewal_cutoff,
        status_of=status_of,
    )
