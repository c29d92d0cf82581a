"""Points, level, badges, rewards, leaderboard and referrals: the advocate's side."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.errors import refused_back_to, unit_of_work
from portal.extensions import db
from portal.forms.recognition import CancelRedemptionForm, RedeemForm
from portal.models import RedemptionStatus
from portal.security import advocate_required, login_required_active
from portal.services import badges, leaderboard, points, referrals, rewards, settings

bp = Blueprint("recognition", __name__)


@bp.route("/me/points")
@advocate_required
def my_points():
    lifetime = points.lifetime_earned(db.session, current_user.id)
    return render_template(
        "recognition/points.html",
        balance=points.balance(db.session, current_user.id),
        level=points.level_for(lifetime),
        entries=points.history(db.session, current_user.id),
        ways=points.ways_to_earn(db.session),
    )


@bp.route("/me/badges")
@advocate_required
def badges_page():
    return render_template("recognition/badges.html", gallery=badges.gallery(db.session, current_user.id))


@bp.route("/rewards")
@advocate_required
def catalog():
    return render_template(
        "recognition/rewards.html",
        rewards=rewards.catalog(db.session),
        balance=points.balance(db.session, current_user.id),
        form=RedeemForm(),
        idem=secrets.token_urlsafe(16),
    )


@bp.route("/rewards/redeem", methods=["POST"])
@advocate_required
@unit_of_work
def redeem():
    form = RedeemForm()
    if not form.validate_on_submit():
        flash("That order could not be read. Please try again.", "error")
        return redirect(url_for("recognition.catalog"))
    # The reward comes from the form: one retired since the catalog was shown is a refusal, not a 404.
    refused_back_to(url_for("recognition.catalog"), code=303, target_in_url=False)
    redemption, created = rewards.redeem(db.session, current_user, int(form.reward_id.data), form.idempotency_key.data)
    if created:
        flash(
            f"Thanks! Your order for {redemption.reward.name} is in. We will email you when it is on its way.",
            "success",
        )
    return redirect(url_for("recognition.redemptions"))


@bp.route("/me/redemptions")
@advocate_required
def redemptions():
    return render_template(
        "recognition/redemptions.html",
        redemptions=rewards.history(db.session, current_user.id),
        cancel_form=CancelRedemptionForm(),
        requested=RedemptionStatus.REQUESTED,
    )


@bp.route("/me/redemptions/<int:redemption_id>/cancel", methods=["POST"])
@advocate_required
@unit_of_work
def cancel_redemption(redemption_id):
    form = CancelRedemptionForm()
    if not form.validate_on_submit():
        abort(400)
    refused_back_to(url_for("recognition.redemptions"))
    rewards.cancel(db.session, redemption_id, current_user, form.reason.data or "Cancelled by the advocate")
    flash("Your order is cancelled and the points are back in your balance.", "success")
    return redirect(url_for("recognition.redemptions"))


@bp.route("/leaderboard")
@login_required_active
def leaderboard_page():
    period = request.args.get("period", "all")
    if period not in leaderboard.PERIODS:
        period = "all"
    rows, mine = leaderboard.ranking(db.session, period, viewer_id=current_user.id)
    return render_template(
        "recognition/leaderboard.html", rows=rows, mine=mine, period=period, periods=leaderboard.PERIODS
    )


@bp.route("/me/referrals")
@advocate_required
def my_referrals():
    return render_template(
        "recognition/referrals.html",
        link=referrals.referral_link(current_user),
        per_referral=settings.get(db.session, "points_referral"),
        people=referrals.referrals_of(db.session, current_user.id),
        credited=referrals.credited_ids(db.session, current_user.id),
    )


@bp.route("/r/<code>")
def referred(code):
    """A personal referral link: remember who sent the visitor, then show the sign-up form."""
    referrer = referrals.referrer_for_code(db.session, code)
    if referrer is not None and not current_user.is_authenticated:
        session["referred_by"] = referrer.id
        flash(f"{referrer.name} invited you to the advocate program. Welcome!", "info")
    return redirect(url_for("auth.register"))
