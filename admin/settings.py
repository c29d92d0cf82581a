"""Admin page: the program settings, on one page (portal.services.settings holds them)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import BooleanField
from wtforms.validators import InputRequired, NumberRange

from admin.views import bp
from portal.errors import refused_form, unit_of_work
from portal.extensions import db
from portal.forms import BaseForm, IntegerField
from portal.services import settings


def _settings_form_class() -> type[BaseForm]:
    """A form with one field per setting, named by its key, with its label, help text and bounds."""
    fields = {}
    for s in settings.SETTINGS:
        if s.kind == settings.BOOL:
            fields[s.key] = BooleanField(s.label, description=s.help)
        else:
            fields[s.key] = IntegerField(
                s.label, validators=[InputRequired(), NumberRange(s.low, s.high)], description=s.help
            )
    return type("SettingsForm", (BaseForm,), fields)


SettingsForm = _settings_form_class()


def _groups(form) -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for s in settings.SETTINGS:
        groups.setdefault(s.group, []).append(form[s.key])
    return list(groups.items())


def _settings_page(form):
    return render_template("admin/settings.html", form=form, groups=_groups(form))


@bp.route("/settings", methods=["GET", "POST"], endpoint="settings")
@unit_of_work
def settings_page():
    form = SettingsForm(data=settings.values(db.session) if request.method == "GET" else None)
    if form.validate_on_submit():
        refused_form(form, _settings_page)
        changed = settings.save(db.session, {s.key: form[s.key].data for s in settings.SETTINGS}, current_user.id)
        if changed:
            said = "; ".join(
                f"{settings.BY_KEY[key].label}: {settings.describe(settings.BY_KEY[key], before)} → "
                f"{settings.describe(settings.BY_KEY[key], after)}"
                for key, (before, after) in changed.items()
            )
            flash(f"Settings saved. {said}.", "success")
        else:
            flash("Nothing changed.", "info")
        return redirect(url_for("admin.settings"))
    return _settings_page(form), 422 if request.method == "POST" else 200
