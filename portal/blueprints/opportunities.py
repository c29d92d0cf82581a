"""What advocates see: the feed, the detail page, their commitments and boards."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.errors import refused_back_to, unit_of_work
from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.forms.opportunities import RequestForm
from portal.forms.search import SearchQueryForm
from portal.models import ACTIVE_STATUSES, Opportunity, Participation
from portal.security import advocate_required
from portal.services import opportunities, participation, profiles

bp = Blueprint("opportunities", __name__)


@bp.route("/opportunities")
@advocate_required
def feed():
    types = profiles.activity_types(db.session)
    try:
        type_id = int(request.args.get("type") or 0) or None
    except ValueError:
        type_id = None
    if type_id and type_id not in {t.id for t in types}:
        type_id = None
    matches, held_back = opportunities.feed_with_limits(db.session, current_user, type_id)
    return render_template(
        "opportunities/feed.html",
        matches=matches,
        held_back=held_back,
        types=types,
        type_id=type_id,
        search_form=SearchQueryForm(formdata=None),
    )


@bp.route("/opportunities/<int:opp_id>")
@advocate_required
def detail(opp_id):
    opp = db.get_or_404(Opportunity, opp_id)
    if not opportunities.visible_to(db.session, current_user.id, opp):
        abort(404)
    mine = db.session.query(Participation).filter_by(opportunity_id=opp.id, user_id=current_user.id).one_or_none()
    decision, match = opportunities.detail(db.session, current_user, opp)
    return render_template(
        "opportunities/detail.html",
        opp=opp,
        mine=mine,
        eligible=decision.allowed,
        why=decision.for_advocate(),
        match=match,
        form=RequestForm(),
        withdraw_form=ConfirmForm(),
        active=ACTIVE_STATUSES,
    )


@bp.route("/opportunities/<int:opp_id>/request", methods=["POST"])
@advocate_required
@unit_of_work
def request_seat(opp_id):
    back = url_for("opportunities.detail", opp_id=opp_id)
    form = RequestForm()
    if not form.validate_on_submit():
        flash("Your message is too long (1,000 characters at most).", "error")
        return redirect(back)
    refused_back_to(back)
    p = participation.request(db.session, current_user, opp_id, form.message.data or "")
    if p.status.value == "approved":
        flash("You're in! Your place is confirmed; we have emailed you the details.", "success")
    else:
        flash("Thanks! Your request is in. The program team will confirm by email.", "success")
    return redirect(back)


@bp.route("/me/commitments/<int:participation_id>/withdraw", methods=["POST"])
@advocate_required
@unit_of_work
def withdraw(participation_id):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(url_for("opportunities.commitments"))
    p = participation.withdraw(db.session, current_user, participation_id)
    flash(f"You withdrew from {p.opportunity.title}.", "success")
    return redirect(url_for("opportunities.commitments"))


@bp.route("/me/commitments")
@advocate_required
def commitments():
    rows = participation.of_user(db.session, current_user.id)
    current = [p for p in rows if p.status in ACTIVE_STATUSES]
    history = [p for p in rows if p.status not in ACTIVE_STATUSES]
    return render_template(
        "opportunities/commitments.html", current=current, history=history, withdraw_form=ConfirmForm()
    )


@bp.route("/me/boards")
@advocate_required
def my_boards():
    current, past = participation.boards_of(db.session, current_user.id)
    return render_template("opportunities/boards.html", current=current, past=past)
