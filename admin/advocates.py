"""An advocate's profile as the program sees it (admins; the admin blueprint's guard applies).
Staff see the same card at search.advocate_profile, in the portal's layout."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, render_template, request

from admin.views import bp
from portal.extensions import db
from portal.services import fatigue, profiles, timeline


@bp.route("/advocates/<int:user_id>/profile")
def advocate_profile(user_id):
    card = profiles.advocate_card(db.session, user_id)
    if card is None:
        abort(404)
    before = _cursor(request.args.get("before"))
    # The same fatigue status (and the same computation) as the admins' advocate list.
    return render_template(
        "admin/advocate_profile.html",
        card=card,
        fs=fatigue.status(db.session, card.user.id),
        history=timeline.timeline(db.session, card.user.id, before),
        older=before is not None,
    )


def _cursor(value: str | None) -> datetime | None:
    """The timeline page's ``before`` (an ISO time the page itself wrote); anything else is the first page."""
    try:
        at = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
