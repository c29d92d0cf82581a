"""CSV exports of the admin area: the advocates (with the list's filters), participations, the points
ledger and reward orders. A POST (an export is an audited action, never a side effect of a GET); the
filters ride in the query string of the form's action. What each holds: portal.services.exports."""

from __future__ import annotations

from flask import abort, request
from flask_login import current_user

from admin.advocates import list_filters, selected_ids
from admin.views import bp
from portal.errors import unit_of_work
from portal.exports import csv_response
from portal.extensions import db
from portal.models import ParticipationStatus, RedemptionStatus, utcnow
from portal.services import audit, exports


def _enum(enum_type, value: str | None):
    return enum_type(value) if value in {e.value for e in enum_type} else None


@bp.route("/exports/<any(advocates, participations, ledger, redemptions):kind>", methods=["POST"])
@unit_of_work
def export(kind):
    export = exports.EXPORTS[kind]
    filters = {k: v for k, v in request.args.items() if v}
    if kind == "advocates":
        _, chosen, status = list_filters()
        if chosen is None:
            abort(400)
        rows = exports.advocate_rows(db.session, selected_ids(chosen, status))
    elif kind == "participations":
        opp_id = request.args.get("opp_id", type=int)
        rows = exports.participation_rows(db.session, opp_id, _enum(ParticipationStatus, request.args.get("status")))
    elif kind == "ledger":
        rows = exports.ledger_rows(db.session)
    else:
        rows = exports.redemption_rows(db.session, _enum(RedemptionStatus, request.args.get("status")))
    # Committed by unit_of_work when this returns, before the first row is streamed.
    audit.record(db.session, f"export.{kind}", current_user.id, None, filters=filters)
    return csv_response(f"{kind}-{utcnow():%Y%m%d-%H%M%S}.csv", export.header, rows)
