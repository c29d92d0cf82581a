"""Nominations: a staff member tells the program about a happy customer (portal.services.nominations holds
the rules). Staff see their own nominations; admins see everyone's (and review them in the admin area)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from wtforms import EmailField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.errors import refused_form, unit_of_work
from portal.extensions import db, limiter
from portal.forms import BaseForm, mailable_email
from portal.models import NominationStatus, Role, User
from portal.services import nominations
from portal.services.errors import Conflict
from staff.views import bp

NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("staff.nominations", "Nominations", ("staff.nominate", "staff.nomination")),
]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class NominationForm(BaseForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)], render_kw={"autocomplete": "off"})
    email = EmailField(
        "Work email",
        validators=[DataRequired(), *mailable_email(), Length(max=254)],
        filters=[_strip],  # as a browser sends it (registration's checks, then normalised by the service)
        render_kw={"autocomplete": "off"},
    )
    company = StringField("Company", validators=[DataRequired(), Length(max=160)])
    job_title = StringField("Job title", validators=[DataRequired(), Length(max=160)])
    reason = TextAreaField(
        "Why them?",
        validators=[DataRequired(), Length(max=4000)],
        description="What they achieved with us, and what they could do for the program (a talk, a review, a "
        "reference call...).",
        render_kw={"rows": 5},
    )
    account_owner = StringField(
        "Account owner (optional)",
        validators=[Optional(), Length(max=120)],
        description="Who owns the customer's account, if not you.",
    )
    submit = SubmitField("Nominate")


def _me() -> User:
    return current_user._get_current_object()


def home_context(session: Session, user: User) -> dict:
    rows = nominations.recent_for(session, user)
    return {
        "nominate_url": url_for("staff.nominate"),
        "my_nominations": rows,
        "nomination_people": nominations.people(session, rows),
        "nominations_lapsed": nominations.lapsed(session, rows),
    }


@bp.route("/nominations", endpoint="nominations")  # named apart from the service module
def nominations_list():
    found = nominations.page_for(db.session, _me(), request.args.get("page", 1, type=int) or 1)
    return render_template(
        "staff/nominations.html",
        found=found,
        people=nominations.people(db.session, found.rows),
        lapsed=nominations.lapsed(db.session, found.rows),
        everyone=_me().role == Role.ADMIN,
    )


def _form_page(form, found: nominations.Duplicate | None = None):
    link = None
    if found is not None and found.user_id:
        endpoint = "admin.advocate_profile" if _me().role == Role.ADMIN else "search.advocate_profile"
        link = url_for(endpoint, user_id=found.user_id)
    elif found is not None and found.nomination is not None and nominations.may_see(_me(), found.nomination):
        link = url_for("staff.nomination", nomination_id=found.nomination.id)
    return render_template("staff/nominate.html", form=form, duplicate=found, duplicate_link=link)


def _nomination_limit() -> str:
    return current_app.config["NOMINATION_RATE_LIMIT"]


def _per_user() -> str:
    return f"user:{current_user.get_id()}"


@bp.route("/nominations/new", methods=["GET", "POST"])
@limiter.limit(_nomination_limit, methods=["POST"], key_func=_per_user)  # a nomination can send an invitation
@unit_of_work
def nominate():
    form = NominationForm()
    if not form.validate_on_submit():
        return _form_page(form), (422 if request.method == "POST" else 200)
    found = nominations.duplicate(db.session, form.email.data)
    if found is not None:
        return _form_page(form, found), 409
    refused_form(form, _form_page, statuses={Conflict: 409})
    nomination = nominations.nominate(
        db.session,
        nominations.Nominee(
            name=form.name.data,
            email=form.email.data,
            company=form.company.data or "",
            job_title=form.job_title.data or "",
            reason=form.reason.data or "",
            account_owner=form.account_owner.data or "",
        ),
        _me(),
    )
    invited = nomination.status == NominationStatus.INVITED
    message = (
        f"Thank you: {nomination.name} has been sent their invitation."
        if invited
        else f"Thank you: the program team will review your nomination of {nomination.name}."
    )
    flash(message, "success")
    return redirect(url_for("staff.nomination", nomination_id=nomination.id))


@bp.route("/nominations/<int:nomination_id>")
@unit_of_work
def nomination(nomination_id: int):
    row = nominations.get_for(db.session, nomination_id, _me())  # another staff member's: 404
    return render_template(
        "staff/nomination.html",
        nomination=row,
        people=nominations.people(db.session, [row]),
        lapsed=nominations.lapsed(db.session, [row]),
        everyone=_me().role == Role.ADMIN,
    )
