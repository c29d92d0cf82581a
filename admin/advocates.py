"""An advocate's profile as the program sees it (admins; the admin blueprint's guard applies).
Staff see the same card at search.advocate_profile, in the portal's layout."""

from __future__ import annotations

from flask import abort, render_template

from admin.views import bp
from portal.extensions import db
from portal.services import fatigue, profiles


@bp.route("/advocates/<int:user_id>/profile")
def advocate_profile(user_id):
    card = profiles.advocate_card(db.session, user_id)
    if card is None:
        abort(404)
    # The same fatigue status (and the same computation) as the admins' advocate list.
    return render_template("admin/advocate_profile.html", card=card, fs=fatigue.status(db.session, card.user.id))
