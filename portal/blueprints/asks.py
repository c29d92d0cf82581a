"""The advocate's asks: every ask ever made of them (the opportunities they asked for, the ones an admin
added them to, the reference requests they were asked for), with a one-click answer to a pending one
and, once a reference is completed, a short note on how it went."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.errors import refused_back_to, unit_of_work
from portal.extensions import db
from portal.forms.auth import ConfirmForm
from portal.forms.references import AnswerForm, NoteForm
from portal.security import advocate_required
from portal.services import references

bp = Blueprint("asks", __name__)


@bp.route("/me/asks")
@advocate_required
def index():
    return render_template(
        "asks/index.html",
        rows=references.asks_of(db.session, current_user.id),
        accept_form=ConfirmForm(),
        decline_form=AnswerForm(),
        note_form=NoteForm(),
        ask_days=references.ASK_DAYS,
    )


@bp.route("/me/asks/<int:participation_id>/<any(accept, decline, note):action>", methods=["POST"])
@advocate_required
@unit_of_work
def answer(participation_id, action):
    back = url_for("asks.index")
    form = {"accept": ConfirmForm, "decline": AnswerForm, "note": NoteForm}[action]()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash("That is too long; please shorten it.", "error")
        return redirect(back)
    refused_back_to(back)
    if action == "accept":
        p = references.accept(db.session, current_user, participation_id)
        flash(f"Thank you! You said yes to {p.opportunity.title}; the requester will be in touch.", "success")
    elif action == "decline":
        p = references.decline(db.session, current_user, participation_id, form.reason.data or "")
        flash(f"You declined {p.opportunity.title}. Thanks for letting us know.", "success")
    else:
        references.leave_note(db.session, current_user, participation_id, form.note.data or "")
        flash("Your note is saved. Thank you!", "success")
    return redirect(back)
