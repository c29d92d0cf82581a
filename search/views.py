"""Advocate search (staff and admins), opportunity search (advocates), index health (admins)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from portal.extensions import db
from portal.forms.search import SearchQueryForm
from portal.models import Role, Status
from portal.security import admin_required, advocate_required, staff_required
from portal.services import profiles
from search import backend, querying, service
from search.facets import FACETS

bp = Blueprint("search", __name__)


@bp.before_app_request
def _warm_search_once():
    """The first request of a worker process starts warming the search index in a background thread
    (search.querying.warm: facet bitsets, lengths, common terms), so the first search does not pay
    for it. Off with SEARCH_WARM = False (and by default under TESTING)."""
    backend().warm_up()


FACET_TITLES = {
    "industry": "Industry",
    "region": "Region",
    "country": "Country",
    "size": "Company size",
    "product": "Product",
    "activity": "Willing to do",
    "freshness": "Freshness",
    "fatigue": "Fatigue",
}


def _int(value, default=1, lo=1, hi=10_000):
    try:
        return min(max(int(value), lo), hi)
    except (TypeError, ValueError):
        return default


def _query_form() -> tuple[SearchQueryForm, bool]:
    """The search box from the URL, and whether it is valid (too long is not: the page says so, 422).
    What is shown again of a refused query is bounded too."""
    form = SearchQueryForm(request.args)
    valid = form.validate()
    form.q.data = (form.q.data or "")[:10_000]
    return form, valid


@bp.route("/search/advocates")
@staff_required
def advocates():
    args = request.args
    form, valid = _query_form()
    req = querying.AdvocateSearch(
        q=form.q.data,
        filters={f: args.getlist(f)[:50] for f in list(FACETS) + ["freshness"]},
        include_unavailable=args.get("include_unavailable") == "1",
        sort=args.get("sort", "relevance"),
        page=_int(args.get("page")),
    )
    results = service.advocates(db.session, req) if valid else querying.Results(0, [], {}, 1, 1, [])
    page = render_template(
        "search/advocates.html",
        form=form,
        req=req,
        results=results,
        titles=FACET_TITLES,
        sorts=querying.SORTS,
        fatigue_labels=querying._labels(db.session)["fatigue"],
        stale_days=profiles.stale_days(),
    )
    return page, 200 if valid else 422


@bp.route("/search/advocates/<int:user_id>")
@staff_required
def advocate_profile(user_id):
    """One advocate's profile, for the staff member (or admin) who found them."""
    card = profiles.advocate_card(db.session, user_id)
    # Staff see the advocates search can show them (active ones); admins see everyone's, as in the admin area.
    if card is None or (current_user.role != Role.ADMIN and card.user.status != Status.ACTIVE):
        abort(404)
    return render_template("search/advocate.html", card=card)


@bp.route("/search/opportunities")
@advocate_required
def opportunities():
    types = profiles.activity_types(db.session)
    type_id = _int(request.args.get("type"), default=0, lo=0, hi=10**9) or None
    if type_id not in {t.id for t in types}:
        type_id = None
    form, valid = _query_form()
    matches, notes = service.opportunities_for(db.session, current_user, form.q.data, type_id) if valid else ([], [])
    page = render_template(
        "search/opportunities.html", form=form, matches=matches, notes=notes, types=types, type_id=type_id
    )
    return page, 200 if valid else 422


@bp.route("/admin/search-index")
@admin_required
def health():
    return render_template("search/health.html", health=service.health(db.session))
