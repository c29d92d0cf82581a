"""Admin pages: the lists the program uses (industries, products, size bands, regions and their countries,
use-case and topic tags). Activity types, badges and rewards have their own pages (admin/recognition.py);
the Lists page links to them. The rules live in portal.services.lists."""

from __future__ import annotations

from functools import partial

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, Length

from admin.views import bp
from portal.errors import FLASH, refused_back_to, refused_form, unit_of_work
from portal.extensions import db
from portal.forms import BaseForm
from portal.forms.auth import ConfirmForm
from portal.models import Region, TagKind
from portal.services import lists
from portal.services.errors import NotFound


class NameForm(BaseForm):
    # The service says what a good name is (non-empty, length, unique); the form only bounds the input.
    name = StringField("Name", validators=[Length(max=500)])


class RegionForm(BaseForm):
    region_id = SelectField("Region", coerce=int, validators=[InputRequired()])


class MergeForm(BaseForm):
    into = StringField("Merge into", validators=[Length(max=500)])


TAG_KINDS = {"use-cases": TagKind.USE_CASE, "topics": TagKind.TOPIC}
TAG_TITLES = {TagKind.USE_CASE: "Use cases", TagKind.TOPIC: "Topics"}
TAG_SLUGS = {kind: slug for slug, kind in TAG_KINDS.items()}


def _kind(slug: str) -> lists.ListKind:
    if slug not in lists.KINDS:  # a URL naming no list: the 404 page (views leave DomainErrors to unit_of_work)
        abort(404)
    return lists.kind_of(slug)


def _tag_kind(slug: str) -> TagKind:
    if slug not in TAG_KINDS:
        abort(404)
    return TAG_KINDS[slug]


@bp.route("/lists")
def lists_index():
    return render_template("admin/lists.html", kinds=lists.KINDS.values(), tag_kinds=TAG_KINDS, titles=TAG_TITLES)


# --- industries, products, size bands, regions -----------------------------------------------------------------------


def _items_page(kind: lists.ListKind, add_form=None):
    regions = kind.model is Region
    region_form = RegionForm()
    if regions:
        region_form.region_id.choices = [(r.id, r.name) for r in lists.offered(db.session, Region)]
    return render_template(
        "admin/lists_items.html",
        kind=kind,
        rows=lists.items_with_use(db.session, kind),
        add_form=add_form or NameForm(),
        button=ConfirmForm(),
        countries=lists.countries_by_region(db.session) if regions else None,
        region_form=region_form,
    )


@bp.route("/lists/<list_kind>")
def list_items(list_kind):
    return _items_page(_kind(list_kind))


@bp.route("/lists/<list_kind>/add", methods=["POST"])
@unit_of_work
def list_add(list_kind):
    kind = _kind(list_kind)
    form = NameForm()
    if not form.validate_on_submit():
        return _items_page(kind, form), 422
    refused_form(form, lambda f: _items_page(kind, f), field=form.name)
    item = lists.add_item(db.session, kind, form.name.data, current_user.id)
    flash(f"{item.name} is added to {kind.title.lower()}.", "success")
    return redirect(url_for("admin.list_items", list_kind=kind.slug))


@bp.route("/lists/<list_kind>/<int:item_id>/rename", methods=["POST"])
@unit_of_work
def list_rename(list_kind, item_id):
    kind = _kind(list_kind)
    form = NameForm()
    if not form.validate_on_submit():
        flash("That name is too long.", "error")
        return _items_page(kind), 422
    refused_form(form, lambda f: _items_page(kind), field=FLASH, statuses={NotFound: 404})
    item = lists.rename_item(db.session, kind, item_id, form.name.data, current_user.id)
    flash(f"Renamed: {item.name}.", "success")
    return redirect(url_for("admin.list_items", list_kind=kind.slug))


def _button(kind: lists.ListKind, item_id: int, do) -> object:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    back = url_for("admin.list_items", list_kind=kind.slug)
    refused_back_to(back)
    do()
    return redirect(back)


@bp.route("/lists/<list_kind>/<int:item_id>/retire", methods=["POST"])
@unit_of_work
def list_retire(list_kind, item_id):
    kind = _kind(list_kind)

    def retire():
        item = lists.set_active(db.session, kind, item_id, False, current_user.id)
        flash(f"{item.name} is retired: profiles that have it keep it; it is no longer offered.", "success")

    return _button(kind, item_id, retire)


@bp.route("/lists/<list_kind>/<int:item_id>/restore", methods=["POST"])
@unit_of_work
def list_restore(list_kind, item_id):
    kind = _kind(list_kind)

    def restore():
        item = lists.set_active(db.session, kind, item_id, True, current_user.id)
        flash(f"{item.name} is offered again.", "success")

    return _button(kind, item_id, restore)


@bp.route("/lists/<list_kind>/<int:item_id>/up", methods=["POST"])
@unit_of_work
def list_up(list_kind, item_id):
    kind = _kind(list_kind)
    return _button(kind, item_id, partial(lists.move_item, db.session, kind, item_id, True, current_user.id))


@bp.route("/lists/<list_kind>/<int:item_id>/down", methods=["POST"])
@unit_of_work
def list_down(list_kind, item_id):
    kind = _kind(list_kind)
    return _button(kind, item_id, partial(lists.move_item, db.session, kind, item_id, False, current_user.id))


@bp.route("/lists/countries/<code>/region", methods=["POST"])
@unit_of_work
def country_region(code):
    kind = lists.KINDS["regions"]
    form = RegionForm()
    form.region_id.choices = [(r.id, r.name) for r in lists.offered(db.session, Region)]
    back = url_for("admin.list_items", list_kind=kind.slug)
    if not form.validate_on_submit():
        flash("Choose a region from the list.", "error")
        return _items_page(kind), 422
    refused_back_to(back)
    country = lists.move_country(db.session, code, form.region_id.data, current_user.id)
    flash(f"{country.name} is now in {country.region.name}.", "success")
    return redirect(back)


# --- tags ------------------------------------------------------------------------------------------------------------


def _tags_page(tag_kind: TagKind):
    text = (request.args.get("q") or "").strip()[:40]
    page = lists.tag_page(db.session, tag_kind, request.args.get("page", 1, type=int) or 1, text)
    return render_template(
        "admin/lists_tags.html",
        tag_kind=tag_kind,
        slug=TAG_SLUGS[tag_kind],
        title=TAG_TITLES[tag_kind],
        noun=lists.TAG_NOUNS[tag_kind],
        found=page,
        text=text,
        names=[name for _, name in lists.tag_choices(db.session, tag_kind)],
        button=ConfirmForm(),
    )


@bp.route("/lists/tags/<tag_kind>")
def list_tags(tag_kind):
    return _tags_page(_tag_kind(tag_kind))


def _tag_back(tag_id: int) -> tuple[TagKind, str]:
    tag_kind = lists.tag_kind_of(db.session, tag_id)
    return tag_kind, url_for("admin.list_tags", tag_kind=TAG_SLUGS[tag_kind])


@bp.route("/lists/tags/<int:tag_id>/rename", methods=["POST"])
@unit_of_work
def tag_rename(tag_id):
    tag_kind, back = _tag_back(tag_id)
    form = NameForm()
    if not form.validate_on_submit():
        flash("That name is too long.", "error")
        return _tags_page(tag_kind), 422
    refused_form(form, lambda f: _tags_page(tag_kind), field=FLASH)
    tag = lists.rename_tag(db.session, tag_id, form.name.data, current_user.id)
    flash(f"Renamed: {tag.name}.", "success")
    return redirect(back)


@bp.route("/lists/tags/<int:tag_id>/merge", methods=["POST"])
@unit_of_work
def tag_merge(tag_id):
    tag_kind, back = _tag_back(tag_id)
    form = MergeForm()
    if not form.validate_on_submit():
        flash("That name is too long.", "error")
        return _tags_page(tag_kind), 422
    refused_form(form, lambda f: _tags_page(tag_kind), field=FLASH)
    source_name, target = lists.tag_name(db.session, tag_id), lists.tag_named(db.session, tag_kind, form.into.data)
    moved = lists.merge_tags(db.session, tag_id, target.id, current_user.id)
    flash(f"“{source_name}” is merged into “{target.name}” ({moved} profile{'s' if moved != 1 else ''}).", "success")
    return redirect(back)


@bp.route("/lists/tags/<int:tag_id>/retire", methods=["POST"])
@unit_of_work
def tag_retire(tag_id):
    _, back = _tag_back(tag_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(back)
    tag = lists.set_tag_active(db.session, tag_id, False, current_user.id)
    flash(f"“{tag.name}” is retired: profiles that have it keep it; it is no longer suggested.", "success")
    return redirect(back)


@bp.route("/lists/tags/<int:tag_id>/restore", methods=["POST"])
@unit_of_work
def tag_restore(tag_id):
    _, back = _tag_back(tag_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(back)
    tag = lists.set_tag_active(db.session, tag_id, True, current_user.id)
    flash(f"“{tag.name}” is suggested again.", "success")
    return redirect(back)
