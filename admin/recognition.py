"""Admin pages for recognition: rewards catalog, fulfilment queue, point adjustments, badge grants,
default points per activity type."""

from __future__ import annotations

import secrets
from functools import partial

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.extensions import db
from portal.forms.recognition import (
    ActivityTypePointsForm,
    AdjustPointsForm,
    CancelRedemptionForm,
    FulfilForm,
    GrantBadgeForm,
    RewardEditForm,
    RewardForm,
)
from portal.models import ActivityType, Badge, EntryKind, PointsEntry, RedemptionStatus, Reward, Role, User
from portal.services import accounts, badges, points, rewards
from portal.services.errors import Conflict


def _reward_input(form: RewardForm) -> rewards.RewardInput:
    return rewards.RewardInput(
        name=form.name.data or "",
        description=form.description.data or "",
        points_cost=form.points_cost.data,
        stock=form.stock.data,
        per_advocate_limit=form.per_advocate_limit.data,
        active=form.active.data,
    )


@bp.route("/rewards")
def rewards_list():
    return render_template("admin/rewards.html", rewards=rewards.catalog(db.session, include_inactive=True))


def _reward_page(form, reward=None):
    return render_template("admin/reward_form.html", form=form, reward=reward)


@bp.route("/rewards/new", methods=["GET", "POST"])
@unit_of_work
def reward_new():
    form = RewardForm()
    if form.validate_on_submit():
        refused_form(form, _reward_page)
        reward = rewards.create_reward(db.session, _reward_input(form), current_user.id)
        flash(f"{reward.name} is in the catalog.", "success")
        return redirect(url_for("admin.rewards_list"))
    return _reward_page(form), 422 if form.errors else 200


@bp.route(f"/rewards/<int(max={rewards.MAX_ID}):reward_id>", methods=["GET", "POST"])
@unit_of_work
def reward_edit(reward_id):
    reward = db.get_or_404(Reward, reward_id)
    form = RewardEditForm(obj=reward if request.method == "GET" else None)
    if request.method == "GET":
        form.stock_seen.data = RewardEditForm.encode_stock(reward.stock)
    if form.validate_on_submit():
        # The stock changed since the form was opened (StockChanged), or another Conflict: 409.
        refused_form(form, partial(_reward_page, reward=reward), statuses={Conflict: 409})
        rewards.update_reward(db.session, reward, _reward_input(form), current_user.id, stock_seen=form.seen_stock)
        flash(f"{reward.name} is saved.", "success")
        return redirect(url_for("admin.rewards_list"))
    elif form.stock_seen.errors:  # a form from before this field existed, or a forged one
        form.form_errors.append("This form is out of date; reload the page.")
    return _reward_page(form, reward), 422 if form.errors else 200


@bp.route("/redemptions")
def redemptions_queue():
    status = request.args.get("status", "requested")
    try:
        wanted = RedemptionStatus(status) if status != "all" else None
    except ValueError:
        wanted = RedemptionStatus.REQUESTED
    return render_template(
        "admin/redemptions.html",
        found=(found := rewards.queue(db.session, wanted, page=request.args.get("page", 1, type=int) or 1)),
        items=found.rows,
        status=status,
        fulfil_form=FulfilForm(),
        cancel_form=CancelRedemptionForm(),
    )


@bp.route("/redemptions/<int:redemption_id>/fulfil", methods=["POST"])
@unit_of_work
def redemption_fulfil(redemption_id):
    form = FulfilForm()
    if not form.validate_on_submit():
        abort(400)
    refused_back_to(url_for("admin.redemptions_queue"))
    rewards.fulfil(db.session, redemption_id, current_user.id, form.note.data or "")
    flash("Marked fulfilled; the advocate has been emailed.", "success")
    return redirect(url_for("admin.redemptions_queue"))


@bp.route("/redemptions/<int:redemption_id>/cancel", methods=["POST"])
@unit_of_work
def redemption_cancel(redemption_id):
    form = CancelRedemptionForm()
    if not form.validate_on_submit():
        abort(400)
    refused_back_to(url_for("admin.redemptions_queue"))
    rewards.cancel(db.session, redemption_id, current_user, form.reason.data or "")
    flash("Cancelled: the points are refunded and the stock returned.", "success")
    return redirect(url_for("admin.redemptions_queue"))


def _points_page(form):
    recent = db.session.execute(
        select(PointsEntry, User)
        .join(User, User.id == PointsEntry.user_id)
        .where(PointsEntry.kind == EntryKind.ADJUSTED)
        .order_by(PointsEntry.id.desc())
        .limit(50)
    ).all()
    return render_template("admin/points.html", form=form, recent=recent)


@bp.route("/points", methods=["GET", "POST"])
@unit_of_work
def points_adjust():
    form = AdjustPointsForm()
    if request.method == "GET":
        form.idempotency_key.data = secrets.token_urlsafe(16)
    if form.validate_on_submit():
        user = accounts.get_by_email(db.session, form.email.data)
        if user is None or user.role != Role.ADVOCATE:
            form.email.errors.append("No advocate with that email.")
        else:
            # The form's key already used for another adjustment (a Conflict): 409.
            refused_form(form, _points_page, statuses={Conflict: 409})
            _, created = points.adjust(
                db.session,
                user,
                form.amount.data,
                form.reason.data,
                current_user.id,
                key=f"adjust:{current_user.id}:{form.idempotency_key.data}",
            )
            if created:
                flash(f"Adjusted {user.name}'s points by {form.amount.data:+,}.", "success")
            else:  # the same form sent twice: recorded once, when it was first sent
                flash(f"That adjustment of {user.name}'s points was already recorded.", "info")
            if request.args.get("return_to", type=int) == user.id:  # sent from the advocate's page
                return redirect(url_for("admin.advocate_profile", user_id=user.id) + "#timeline-heading")
            return redirect(url_for("admin.points_adjust"))
    return _points_page(form), 422 if form.errors else 200


def _badges_page(form):
    return render_template("admin/badges.html", form=form)


@bp.route("/badges", methods=["GET", "POST"])
@unit_of_work
def badges_admin():
    form = GrantBadgeForm()
    form.badge_id.choices = [
        (b.id, f"{b.icon} {b.name}")
        for b in db.session.scalars(select(Badge).where(Badge.active.is_(True)).order_by(Badge.position))
    ]
    if form.validate_on_submit():
        user = accounts.get_by_email(db.session, form.email.data)
        if user is None or user.role != Role.ADVOCATE:
            form.email.errors.append("No advocate with that email.")
        else:
            refused_form(form, _badges_page)
            badges.grant_manual(db.session, user, form.badge_id.data, current_user.id, form.reason.data or "")
            flash(f"Badge granted to {user.name}.", "success")
            return redirect(url_for("admin.badges_admin"))
    return _badges_page(form), 422 if form.errors else 200


@bp.route("/activity-types")
def activity_types():
    return render_template("admin/activity_types.html", types=points.activity_types(db.session))


def _activity_type_page(form, activity_type):
    return render_template("admin/activity_type_form.html", form=form, activity_type=activity_type)


@bp.route(f"/activity-types/<int(max={rewards.MAX_ID}):type_id>", methods=["GET", "POST"])
@unit_of_work
def activity_type_edit(type_id):
    activity_type = db.get_or_404(ActivityType, type_id)
    form = ActivityTypePointsForm(obj=activity_type if request.method == "GET" else None)
    if form.validate_on_submit():
        refused_form(form, partial(_activity_type_page, activity_type=activity_type))
        points.set_default_points(db.session, activity_type, form.default_points.data, current_user.id)
        flash(f"{activity_type.name}: {activity_type.default_points:,} points by default.", "success")
        return redirect(url_for("admin.activity_types"))
    return _activity_type_page(form, activity_type), 422 if form.errors else 200
