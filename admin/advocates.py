"""An advocate's profile as the program sees it (admins; the admin blueprint's guard applies).
Staff see the same card at search.advocate_profile, in the portal's layout."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from math import ceil

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import Select, false, func, select, text, true

from admin.forms import (
    AdvocateFilterForm,
    BulkAdvocatesForm,
    NoteForm,
    ReactivateForm,
    ReverseForm,
    RoleForm,
    SuspendForm,
)
from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.exports import csv_response
from portal.extensions import db
from portal.forms.profile import ProfileForm, fill_profile_choices, profile_form_data, profile_input
from portal.forms.recognition import AdjustPointsForm
from portal.models import ActivityType, Industry, PointsEntry, Product, Region, Role, Status, TagKind, User, utcnow
from portal.services import accounts, audit, exports, fatigue, lists, notes, points, profiles, roster, timeline
from search import service as search_service


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
        points_form=_points_form(card.user.email),
    )


def _points_form(email: str) -> AdjustPointsForm:
    """The points form of /admin/points, for this advocate; its fields' ids must not clash with the
    suspension's "reason" on the same page (the names stay: /admin/points reads them)."""
    form = AdjustPointsForm(formdata=None, data={"email": email, "idempotency_key": secrets.token_urlsafe(16)})
    for f in (form.amount, form.reason):
        f.id = f.label.field_id = f"adjust-{f.name}"
    return form


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


# --- an admin edits the advocate's profile -------------------------------------------------------------------------

# The advocate's own form (portal.forms.profile.ProfileForm: the same fields and validators, and the same
# service rules through profiles.edit_for_admin), its labels told in the third person.
ADMIN_LABELS = {
    "product_ids": "Products they use",
    "topics": "Topics they know well",
    "story": "Story and outcomes",
    "show_on_leaderboard": "Show them on leaderboards",
}


def _profile_form(user: User, saved: bool) -> ProfileForm:
    """The profile form for ``user``: filled with what is saved (a GET), or with the POST's input."""
    form = ProfileForm(formdata=None) if saved else ProfileForm()
    profile = profiles.read_profile(db.session, user)
    fill_profile_choices(form, db.session, profile)
    if saved:
        for name, value in profile_form_data(user, profile).items():
            form[name].data = value
    for name, label in ADMIN_LABELS.items():
        form[name].label.text = label
    form.submit.label.text = "Save changes"
    return form


def _edit_page(user: User, form: ProfileForm):
    return render_template(
        "admin/advocate_edit.html",
        user=user,
        form=form,
        use_case_suggestions=profiles.tag_suggestions(db.session, TagKind.USE_CASE),
        topic_suggestions=profiles.tag_suggestions(db.session, TagKind.TOPIC),
    )


@bp.route("/advocates/<int:user_id>/edit", methods=["GET", "POST"])
@unit_of_work
def advocate_edit(user_id):
    """Edit any of the fields the advocate edits on their own profile page, whatever their account
    status (pending, active, suspended). Their email address is not here: changing it safely takes
    the advocate's password and a link sent to the new address (privacy.request_email_change)."""
    user = _member(user_id)
    if request.method == "GET":
        return _edit_page(user, _profile_form(user, saved=True))
    form = _profile_form(user, saved=False)
    if not form.validate_on_submit():
        return _edit_page(user, form), 422
    refused_form(form, lambda f: _edit_page(user, f))
    changed = profiles.edit_for_admin(db.session, user, profile_input(form), current_user.id)
    if changed:
        flash(
            f"{user.name}'s profile is saved ({len(changed)} field{'s' if len(changed) != 1 else ''} changed).",
            "success",
        )
    else:
        flash("Nothing changed.", "success")
    return redirect(url_for("admin.advocate_profile", user_id=user_id))


def _cursor(value: str | None) -> datetime | None:
    """The timeline page's ``before`` (an ISO time the page itself wrote); anything else is the first page."""
    try:
        at = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


# --- the list ------------------------------------------------------------------------------------------------------

ADVOCATES_PER_PAGE = 50


def list_filters() -> tuple[AdvocateFilterForm, roster.Filters | None, str]:
    """The list's filters from the URL: the form (choices from the program's lists), the Filters (None
    when the form is invalid: it says why) and the fatigue status asked for (computed by the rules)."""
    form = AdvocateFilterForm(request.args)
    s = db.session
    form.industry.choices = [("", "Any")] + [(str(i.id), i.name) for i in lists.active_items(s, Industry)]
    form.region.choices = [("", "Any")] + [(str(r.id), r.name) for r in lists.active_items(s, Region)]
    form.country.choices = [("", "Any")] + [(c.code, c.name) for c in lists.countries(s)]
    form.product.choices = [("", "Any")] + [(str(p.id), p.name) for p in lists.active_items(s, Product)]
    form.activity.choices = [("", "Any")] + [(str(t.id), t.name) for t in lists.active_items(s, ActivityType)]
    form.level.choices = [("", "Any")] + [(name, name) for name, _ in points.levels()]
    status = request.args.get("fatigue") or ""
    status = status if status in fatigue.STATUS_LABELS else ""
    if request.args and not form.validate():
        return form, None, status

    def num(field) -> int | None:
        return int(field.data) if field.data else None

    return (
        form,
        roster.Filters(
            status=form.status.data or "active",
            industry_id=num(form.industry),
            region_id=num(form.region),
            country=form.country.data or "",
            product_id=num(form.product),
            activity_type_id=num(form.activity),
            freshness=form.freshness.data or "",
            level=form.level.data or "",
            joined_since=form.joined_since.data,
            joined_until=form.joined_until.data,
            sort=form.sort.data or "name",
        ),
        status,
    )


FEW = 10_000  # more advocates than this with the status asked for: name those with another status instead


def _among(ids: set[int], negate: bool = False):
    """``users.id IN (...)`` (or NOT IN) written out: plain integers (int() each), so no parameter limit
    (SQLite allows 32,766, PostgreSQL 65,535) and none of the per-value rendering of a bound list."""
    if not ids:
        return true() if negate else false()
    listed = ",".join(str(int(i)) for i in sorted(ids))
    return text(f"{User.__table__.name}.id {'NOT IN' if negate else 'IN'} ({listed})")


def selected_ids(filters: roster.Filters, status: str) -> Select | list[int]:
    """Everyone the list shows (all pages): a select, or the ids the fatigue status keeps.

    Active advocates' statuses come from search.service.advocate_ids_by_fatigue (the index's fatigue
    facet, pauses and blackouts read live: a fixed number of queries; the home page's count asks the
    same): the select names the advocates with the status (IN) or, when they are most of the program,
    those with another (NOT IN; an advocate whose index write is still queued then counts as having it),
    so the database counts and pages as for any other filter. Suspended advocates are not in the index:
    the rules compute theirs (fatigue.ids_with_status)."""
    listed = roster.ids(filters)
    if not status:
        return listed
    if filters.status != "active":
        return fatigue.ids_with_status(db.session, status, listed)
    keep = search_service.advocate_ids_by_fatigue(db.session, [status], most=FEW)[status]
    if keep is not None:
        return listed.where(_among(keep))
    others = search_service.advocate_ids_by_fatigue(db.session, [k for k in fatigue.STATUS_LABELS if k != status])
    return listed.where(_among(set().union(*others.values()), negate=True))


@bp.route("/advocates")
def advocates():
    form, filters, status = list_filters()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    if filters is None:
        users, total, pages, status_of = [], 0, 1, {}
    else:
        chosen = selected_ids(filters, status)
        if isinstance(chosen, list):
            total = len(chosen)
            pages = max(ceil(total / ADVOCATES_PER_PAGE), 1)
            page = min(page, pages)
            ids = chosen[(page - 1) * ADVOCATES_PER_PAGE : page * ADVOCATES_PER_PAGE]
        else:
            total = db.session.scalar(select(func.count()).select_from(chosen.order_by(None).subquery())) or 0
            pages = max(ceil(total / ADVOCATES_PER_PAGE), 1)
            page = min(page, pages)  # ?page=10**30 is the last page, not a 500
            ids = list(db.session.scalars(chosen.offset((page - 1) * ADVOCATES_PER_PAGE).limit(ADVOCATES_PER_PAGE)))
        by_id = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
        users = [by_id[i] for i in ids if i in by_id]
        status_of = fatigue.statuses(db.session, ids)
    return render_template(
        "admin/advocates.html",
        form=form,
        users=users,
        status_of=status_of,
        status=status,
        labels=fatigue.STATUS_LABELS,
        args=args,
        page=page,
        pages=pages,
        total=total,
        bulk_form=BulkAdvocatesForm(),
    ), (200 if filters is not None else 422)


@bp.route("/advocates/bulk", methods=["POST"])
@unit_of_work
def advocates_bulk():
    form = BulkAdvocatesForm()
    back = url_for("admin.advocates", **request.args)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash("Choose what to do with the selection.", "error")
        return redirect(back)
    try:
        ids = [int(v) for v in request.form.getlist("user_id")]
    except ValueError:
        abort(400)
    if not ids:
        flash("Select advocates first: tick them in the list.", "error")
        return redirect(back)
    refused_back_to(back)
    if form.action.data == "export":
        audit.record(db.session, "export.advocates", current_user.id, None, selection=sorted(set(ids))[:1000])
        rows = exports.advocate_rows(db.session, sorted(set(ids)))
        return csv_response(f"advocates-{utcnow():%Y%m%d-%H%M%S}.csv", exports.ADVOCATES.header, rows)
    if form.action.data == "approve":
        if len(set(ids)) > accounts.APPROVE_AT_ONCE:
            flash(f"Approve at most {accounts.APPROVE_AT_ONCE} at once.", "error")
            return redirect(back)
        approved, skipped = accounts.approve_many(db.session, sorted(set(ids)), current_user.id)
        message = f"Approved {len(approved)} advocate{'s' if len(approved) != 1 else ''}; each has been emailed."
        if skipped:
            message += f" {skipped} skipped: not waiting for approval."
        flash(message, "success" if approved else "error")
        return redirect(back)
    if form.action.data == "nudge":
        sent, skipped = roster.nudge(db.session, ids, current_user.id)
        message = f"Sent the email to {sent} advocate{'s' if sent != 1 else ''}."
        if skipped:
            message += f" {skipped} skipped: not active, or they turned reminders off."
    else:
        added = roster.add_tag(db.session, ids, form.tag.data or "", current_user.id)
        message = f"Tagged {added} advocate{'s' if added != 1 else ''} “{(form.tag.data or '').strip()}”."
        if added < len(set(ids)):
            message += f" {len(set(ids)) - added} had it already or have no profile."
    flash(message, "success")
    return redirect(back)
