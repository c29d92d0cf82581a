"""The advocate's own corner: profile, preferences, availability, privacy, unsubscribe."""

from __future__ import annotations

import json
import re
from functools import partial

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import Length, Optional

from portal.blueprints.auth import auth_limit
from portal.errors import refused_as_link, refused_back_to, refused_form, unit_of_work
from portal.extensions import csrf, db, limiter
from portal.forms import BaseForm as FlaskForm
from portal.forms.auth import ConfirmForm
from portal.forms.profile import (
    BlackoutForm,
    ChangeEmailByLinkForm,
    ChangeEmailForm,
    CommunicationForm,
    ConfirmDeletionForm,
    DeleteAccountForm,
    LimitsForm,
    ProfileForm,
    fill_profile_choices,
    profile_form_data,
    profile_input,
)
from portal.models import TagKind
from portal.security import advocate_or_applicant_required, advocate_required
from portal.services import fatigue, privacy, profiles, subscriptions

bp = Blueprint("profile", __name__, url_prefix="/me")


def _fill_profile_choices(form: ProfileForm) -> None:
    fill_profile_choices(form, db.session, profiles.read_profile(db.session, current_user))
    form.industry_id.choices[0] = (None, "Choose your industry")
    form.country_code.choices[0] = ("", "Choose your country")


def _edit_page(form):
    profile = profiles.read_profile(db.session, current_user)  # pages only read (a refused POST too)
    return render_template(
        "profile/edit.html",
        form=form,
        profile=profile,
        completeness=profiles.completeness(current_user, profile),
        use_case_suggestions=profiles.tag_suggestions(db.session, TagKind.USE_CASE),
        topic_suggestions=profiles.tag_suggestions(db.session, TagKind.TOPIC),
    )


@bp.route("/profile", methods=["GET", "POST"])
@advocate_required
@unit_of_work
def edit():
    form = ProfileForm()
    _fill_profile_choices(form)
    if request.method == "GET":
        profile = profiles.read_profile(db.session, current_user)
        for name, value in profile_form_data(current_user, profile).items():
            form[name].data = value
    elif form.validate_on_submit():
        data = profile_input(form)
        refused_form(form, _edit_page)
        profiles.update_profile(db.session, current_user, data)
        flash("Your profile is saved and marked as current.", "success")
        return redirect(url_for("profile.edit"))
    return _edit_page(form), 422 if request.method == "POST" else 200


@bp.route("/profile/preview")
@advocate_required
def preview():
    """The profile as the program's staff and admins see it."""
    card = profiles.profile_card(db.session, current_user._get_current_object())
    return render_template("profile/preview.html", card=card)


@bp.route("/profile/confirm", methods=["POST"])
@advocate_required
@unit_of_work
def confirm():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    profiles.confirm_current(db.session, current_user)
    flash("Thanks! Your profile is marked as current.", "success")
    return redirect(url_for("main.dashboard"))


# --- preferences -------------------------------------------------------------------------------------


def _activity_form_class(types):
    class ActivityForm(FlaskForm):
        submit = SubmitField("Save activities")

    for t in types:
        setattr(ActivityForm, f"opt_{t.id}", BooleanField(t.name, description=t.description))
        setattr(
            ActivityForm,
            f"note_{t.id}",
            StringField(
                f"Note for {t.name}",
                validators=[Optional(), Length(max=200)],
                render_kw={"placeholder": "e.g. virtual events only"},
            ),
        )
    return ActivityForm


def _preferences_page(activity_form, comm_form, types):
    return render_template("profile/preferences.html", activity_form=activity_form, comm_form=comm_form, types=types)


def _activities_page(activity_form, types):
    """The page with this activity form and the email settings as saved."""
    return _preferences_page(activity_form, _saved_comm_form(profiles.read_profile(db.session, current_user)), types)


def _communication_page(comm_form):
    """The page with this email-settings form and the activities as saved."""
    types = profiles.activity_types(db.session)
    profile = profiles.read_profile(db.session, current_user)
    return _preferences_page(_saved_activity_form(profile, types), comm_form, types)


def _saved_activity_form(profile, types):
    """The activity form filled with what is saved (also when the other form on the page was refused)."""
    current = {p.activity_type_id: p for p in profile.preferences}
    data = {}
    for t in types:
        pref = current.get(t.id)
        data[f"opt_{t.id}"] = bool(pref and pref.opted_in)
        data[f"note_{t.id}"] = pref.note if pref else ""
    return _activity_form_class(types)(data=data, formdata=None)


def _saved_comm_form(profile):
    return CommunicationForm(
        formdata=None,
        data={
            "digest": profile.digest.value,
            "notify_opportunities": profile.notify_opportunities,
            "notify_reminders": profile.notify_reminders,
            "notify_news": profile.notify_news,
        },
    )


@bp.route("/preferences", methods=["GET"])
@advocate_required
def preferences():
    profile = profiles.read_profile(db.session, current_user)
    types = profiles.activity_types(db.session)
    return _preferences_page(_saved_activity_form(profile, types), _saved_comm_form(profile), types)


_ACTIVITY_FIELD = re.compile(r"^(?:opt|note)_(\w+)$")


@bp.route("/preferences/activities", methods=["POST"])
@advocate_required
@unit_of_work
def save_activities():
    types = profiles.activity_types(db.session)
    form = _activity_form_class(types)()
    known = {str(t.id) for t in types}
    # A field for an activity type that is not offered (unknown or retired) is refused, not ignored.
    unknown = any(m and m.group(1) not in known for m in map(_ACTIVITY_FIELD.match, request.form))
    valid = form.validate_on_submit()
    if valid and unknown:
        form.form_errors.append("Unknown activity type.")
    elif valid:
        choices = {t.id: (form[f"opt_{t.id}"].data, form[f"note_{t.id}"].data) for t in types}
        refused_form(form, partial(_activities_page, types=types))
        profiles.set_activity_preferences(db.session, current_user, choices)
        flash("Your activity preferences are saved.", "success")
        return redirect(url_for("profile.preferences"))
    return _activities_page(form, types), 422


@bp.route("/preferences/communication", methods=["POST"])
@advocate_required
@unit_of_work
def save_communication():
    form = CommunicationForm()
    if form.validate_on_submit():
        refused_form(form, _communication_page)
        profiles.set_communication(
            db.session,
            current_user,
            form.digest.data,
            form.notify_opportunities.data,
            form.notify_reminders.data,
            form.notify_news.data,
        )
        flash("Your email settings are saved.", "success")
        return redirect(url_for("profile.preferences"))
    return _communication_page(form), 422


# --- availability -------------------------------------------------------------------------------------------


def _availability_page(limits_form, blackout_form):
    profile = profiles.read_profile(db.session, current_user)
    upcoming, past = profiles.split_blackouts(profile)
    return render_template(
        "profile/availability.html",
        limits_form=limits_form,
        blackout_form=blackout_form,
        upcoming=upcoming,
        past=past,
        status=fatigue.availability(profile),
        delete_form=ConfirmForm(),
    )


def _limits_page(limits_form):
    return _availability_page(limits_form, BlackoutForm(formdata=None))


def _blackout_page(blackout_form):
    """The page with this blackout form and the limits as saved."""
    return _availability_page(_saved_limits_form(profiles.read_profile(db.session, current_user)), blackout_form)


def _saved_limits_form(profile):
    """The limits form filled with what is saved (also when the blackout form was refused)."""
    return LimitsForm(
        formdata=None,
        data={
            "max_asks_per_month": profile.max_asks_per_month,
            "max_asks_per_quarter": profile.max_asks_per_quarter,
            "paused_until": profile.paused_until,
            "timezone": profile.timezone,
        },
    )


@bp.route("/availability", methods=["GET", "POST"])
@advocate_required
@unit_of_work
def availability():
    if request.method == "GET":
        return _limits_page(_saved_limits_form(profiles.read_profile(db.session, current_user)))
    form = LimitsForm()
    if form.validate_on_submit():
        refused_form(form, _limits_page)
        profiles.set_limits(
            db.session,
            current_user,
            form.max_asks_per_month.data,
            form.max_asks_per_quarter.data,
            form.paused_until.data,
            form.timezone.data,
        )
        flash("Your availability is saved.", "success")
        return redirect(url_for("profile.availability"))
    return _limits_page(form), 422


@bp.route("/availability/blackouts", methods=["POST"])
@advocate_required
@unit_of_work
def add_blackout():
    form = BlackoutForm()
    if form.validate_on_submit():
        refused_form(form, _blackout_page)
        profiles.add_blackout(db.session, current_user, form.starts_on.data, form.ends_on.data, form.note.data)
        flash("Blackout added. Nobody will ask you during it.", "success")
        return redirect(url_for("profile.availability"))
    return _blackout_page(form), 422


@bp.route("/availability/blackouts/<int:blackout_id>/delete", methods=["POST"])
@advocate_required
@unit_of_work
def delete_blackout(blackout_id):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(url_for("profile.availability"))  # not the advocate's blackout (NotFound): a 404
    profiles.remove_blackout(db.session, current_user, blackout_id)
    flash("Blackout removed.", "success")
    return redirect(url_for("profile.availability"))


# --- privacy ---------------------------------------------------------------------------------------------------


@bp.route("/privacy")
@advocate_required
def privacy_page():
    return render_template("profile/privacy.html", form=ConfirmForm())


@bp.route("/data.json")
@advocate_or_applicant_required  # GDPR: an applicant waiting for approval may download their data too
def export_data():
    data = privacy.export_user_data(db.session, current_user._get_current_object())
    body = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-advocate-data.json"', "Cache-Control": "no-store"},
    )


def _delete_page(form):
    return render_template("profile/delete.html", form=form, link_form=ConfirmForm())


@bp.route("/delete", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@advocate_or_applicant_required  # GDPR: an applicant waiting for approval may delete their account too
@unit_of_work
def delete_account():
    form = DeleteAccountForm()
    if form.validate_on_submit():
        # A wrong password keeps its failure count and any lock (CurrentPasswordWrong keeps writes).
        refused_form(form, _delete_page, field=form.password)
        # The User itself: the service records it in the audit log (a proxy would be logged as "localproxy").
        privacy.delete_account(db.session, current_user._get_current_object(), form.password.data)
        logout_user()
        session.clear()
        flash("Your account is deleted. Thank you for having been part of the program.", "success")
        return redirect(url_for("main.index"))
    return _delete_page(form), 422 if form.errors else 200


@bp.route("/delete/link", methods=["POST"])
@limiter.limit(auth_limit)
@advocate_or_applicant_required
@unit_of_work
def delete_account_link():
    """An account without a password (single sign-on only): the confirmation link goes to its address."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(url_for("profile.delete_account"))
    privacy.request_deletion_link(db.session, current_user._get_current_object())
    flash("We have emailed you a link to confirm the deletion. It is valid for one hour.", "success")
    return redirect(url_for("profile.delete_account"))


@bp.route("/delete/confirm/<token>", methods=["GET", "POST"])
@advocate_or_applicant_required
@unit_of_work
def confirm_delete(token):
    form = ConfirmDeletionForm()
    if request.method == "POST" and form.validate_on_submit():
        refused_as_link()
        privacy.delete_account_by_link(db.session, current_user._get_current_object(), token)
        logout_user()
        session.clear()
        flash("Your account is deleted. Thank you for having been part of the program.", "success")
        return redirect(url_for("main.index"))
    status = 422 if form.errors else 200
    return render_template("profile/confirm_delete.html", form=form, token=token), status


def _change_email_page(form):
    return render_template("profile/change_email.html", form=form)


@bp.route("/email", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@advocate_required
@unit_of_work
def change_email():
    user = current_user._get_current_object()
    form = ChangeEmailForm() if user.password_hash else ChangeEmailByLinkForm()
    if form.validate_on_submit():
        # A wrong password keeps its failure count and any lock (CurrentPasswordWrong keeps writes).
        refused_form(form, _change_email_page)
        if user.password_hash:
            privacy.request_email_change(db.session, user, form.password.data, form.new_email.data)
            flash(
                "We have sent a confirmation link to the new address. Your email changes when you open it.", "success"
            )
        else:  # single sign-on only: the current address confirms first
            privacy.request_email_change_by_link(db.session, user, form.new_email.data)
            flash("We have emailed your current address a link to confirm it is you (valid one hour).", "success")
        return redirect(url_for("profile.privacy_page"))
    return _change_email_page(form), 422 if form.errors else 200


@bp.route("/email/owner/<token>", methods=["GET", "POST"])
@advocate_required
@unit_of_work
def confirm_current_address(token):
    """An account without a password: the link sent to its current address, before the new one gets its own."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        refused_as_link()
        new_email = privacy.confirm_current_address(db.session, current_user._get_current_object(), token)
        flash(f"We have sent a confirmation link to {new_email}. Your email changes when you open it.", "success")
        return redirect(url_for("profile.privacy_page"))
    return render_template("profile/confirm_current_address.html", form=form, token=token)


@bp.route("/email/confirm/<token>", methods=["GET", "POST"])
@unit_of_work
def confirm_email_change(token):
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        refused_as_link()  # also the address taken meanwhile (a Conflict): this link cannot be used
        privacy.confirm_email_change(db.session, token)
        logout_user()
        session.clear()
        flash("Your email address is changed. Sign in with the new address.", "success")
        return redirect(url_for("auth.login"))
    return render_template("profile/confirm_email.html", form=form, token=token)


# --- unsubscribe (no login: the signed token is the authority) -----------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # mail clients POST here (RFC 8058); the signed token, not a cookie, authorises it
@unit_of_work
def unsubscribe(token):
    user, topic = subscriptions.read_unsubscribe(db.session, token)  # an InvalidToken: "link not valid"
    if request.method == "POST":
        subscriptions.apply_unsubscribe(db.session, user, topic)
        return render_template("profile/unsubscribed.html", what=subscriptions.TOPICS[topic], done=True)
    return render_template("profile/unsubscribed.html", what=subscriptions.TOPICS[topic], done=False, token=token)
