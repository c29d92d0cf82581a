"""An advocate's profile as the program sees it (admins; the admin blueprint's guard applies).
Staff see the same card at search.advocate_profile, in the portal's layout."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from admin.forms import NoteForm, ReactivateForm, ReverseForm, RoleForm, SuspendForm
from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.extensions import db
from portal.models import PointsEntry, Role, Status, User
from portal.services import accounts, fatigue, notes, points, profiles, timeline


@bp.route("/advocates/<int:user_id>/profile")
def advocate_profile(user_id):
    card = profiles.advocate_card(db.session, user_id)
    if card is None:
        abort(404)
    before = _cursor(request.args.get("before"))
    # The same fatigue status (and the same computation) as the admins' advocate list.
    return _page(card, before)


def _page(card, before=None, suspend_form=None, reactivate_form=None, role_form=None, note_form=None):
    return render_template(
        "admin/advocate_profile.html",
        card=card,
        fs=fatigue.status(db.session, card.user.id),
        history=timeline.timeline(db.session, card.user.id, before),
        older=before is not None,
        suspend_form=suspend_form or SuspendForm(),
        reactivate_form=reactivate_form or ReactivateForm(),
        role_form=role_form or RoleForm(data={"role": card.user.role.value}),
        note_form=note_form or NoteForm(formdata=None),
    )


def _member(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.role != Role.ADVOCATE or user.status == Status.DELETED:
        abort(404)
    return user


def _form_page(user_id: int, **forms):
    """The advocate page again, with the refused form's input and errors (status 422)."""
    return _page(profiles.advocate_card(db.session, user_id), **forms), 422


@bp.route("/advocates/<int:user_id>/notes", methods=["POST"])
@unit_of_work
def advocate_note(user_id):
    user = _member(user_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return _form_page(user_id, note_form=form)
    refused_form(form, lambda f: _form_page(user_id, note_form=f), field=form.body)
    notes.add(db.session, user, current_user.id, form.body.data)
    flash("The note is saved. Only admins see it.", "success")
    return redirect(url_for("admin.advocate_profile", user_id=user_id) + "#notes-heading")


@bp.route("/advocates/<int:user_id>/points/<int:entry_id>/reverse", methods=["POST"])
@unit_of_work
def advocate_reverse_points(user_id, entry_id):
    _member(user_id)
    form = ReverseForm()
    back = url_for("admin.advocate_profile", user_id=user_id) + "#timeline-heading"
    refused_back_to(back)
    if not form.validate_on_submit():
        flash("Give a reason for the reversal.", "error")
        return redirect(back)
    entry = db.session.get(PointsEntry, entry_id)
    if entry is None or entry.user_id != user_id:
        abort(404)
    reversal = points.reverse_for_admin(db.session, entry_id, form.reason.data, current_user.id)
    flash(f"Reversed: {reversal.amount:+,} points.", "success")
    return redirect(back)


@bp.route("/advocates/<int:user_id>/suspend", methods=["POST"])
@unit_of_work
def advocate_suspend(user_id):
    user = _member(user_id)
    form = SuspendForm()
    if not form.validate_on_submit():
        return _form_page(user_id, suspend_form=form)
    refused_back_to(url_for("admin.advocate_profile", user_id=user_id))
    accounts.suspend(db.session, user, current_user.id, form.reason.data, notify=True)
    flash(f"{user.name} is suspended, signed out and told why.", "success")
    return redirect(url_for("admin.advocate_profile", user_id=user_id))


@bp.route("/advocates/<int:user_id>/reactivate", methods=["POST"])
@unit_of_work
def advocate_reactivate(user_id):
    user = _member(user_id)
    form = ReactivateForm()
    if not form.validate_on_submit():
        return _form_page(user_id, reactivate_form=form)
    refused_back_to(url_for("admin.advocate_profile", user_id=user_id))
    accounts.reactivate(db.session, user, current_user.id, form.reason.data or "")
    flash(f"{user.name} is active again and has been told.", "success")
    return redirect(url_for("admin.advocate_profile", user_id=user_id))


@bp.route("/advocates/<int:user_id>/role", methods=["POST"])
@unit_of_work
def advocate_role(user_id):
    user = _member(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _form_page(user_id, role_form=form)
    refused_back_to(url_for("admin.advocate_profile", user_id=user_id))
    accounts.change_role(db.session, user, Role(form.role.data), current_user.id)
    flash(f"{user.name} is now {form.role.data}; their sessions have ended.", "success")
    return redirect(url_for("admin.advocates"))


def _cursor(value: str | None) -> datetime | None:
    """The timeline page's ``before`` (an ISO time the page itself wrote); anything else is the first page."""
    try:
        at = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
