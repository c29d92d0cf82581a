"""Admin: the nominations waiting for review (accept: the nominee is invited; decline: with a reason the
nominator sees). The rules are in portal.services.nominations."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from admin.views import bp
from portal.errors import refused_back_to, unit_of_work
from portal.extensions import db
from portal.forms import BaseForm
from portal.forms.auth import ConfirmForm
from portal.models import Nomination
from portal.services import nominations


class DeclineNominationForm(BaseForm):
    reason = StringField("Reason (the nominator sees it)", validators=[DataRequired(), Length(max=1000)])


@bp.route("/nominations", endpoint="nominations")  # named apart from the service module
def nominations_queue():
    found = nominations.waiting(db.session, request.args.get("page", 1, type=int) or 1)
    return render_template(
        "admin/nominations.html",
        found=found,
        people=nominations.people(db.session, found.rows),
        accept_form=ConfirmForm(),
        decline_form=DeclineNominationForm(),
    )


def _nomination(nomination_id: int) -> Nomination:
    return db.get_or_404(Nomination, nomination_id)


@bp.route("/nominations/<int:nomination_id>/accept", methods=["POST"])
@unit_of_work
def nomination_accept(nomination_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    nomination = _nomination(nomination_id)
    refused_back_to(url_for("admin.nominations"))
    nominations.accept(db.session, nomination, current_user.id)
    flash(f"{nomination.name} has been sent their invitation.", "success")
    return redirect(url_for("admin.nominations"))


@bp.route("/nominations/<int:nomination_id>/decline", methods=["POST"])
@unit_of_work
def nomination_decline(nomination_id: int):
    form = DeclineNominationForm()
    if not form.validate_on_submit():
        flash("Give the reason for declining: the nominator sees it.", "error")
        return redirect(url_for("admin.nominations"))
    nomination = _nomination(nomination_id)
    refused_back_to(url_for("admin.nominations"))
    nominations.decline(db.session, nomination, current_user.id, form.reason.data)
    flash(f"The nomination of {nomination.name} is declined; the nominator has been emailed.", "success")
    return redirect(url_for("admin.nominations"))
