"""An advocate's profile as the program sees it (admins; the admin blueprint's guard applies)."""
from __future__ import annotations

from flask import abort, render_template

from admin.views import bp
from portal.extensions import db
from portal.models import Role, Status, User
from portal.services import profiles


@bp.route("/advocates/<int:user_id>/profile")
def advocate_profile(user_id):
    user = db.session.get(User, user_id)
    if user is None or user.role != Role.ADVOCATE or user.status == Status.DELETED:
        abort(404)
    # An advocate who never opened their profile gets an empty one for this page; it is not committed.
    card = profiles.profile_card(db.session, user)
    return render_template("admin/advocate_profile.html", card=card)
