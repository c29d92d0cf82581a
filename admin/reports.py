"""Admin pages for the program's value (issue 14): the dashboard for a period against the one before,
the value of each activity type, and portfolio coverage (segment targets, their gaps, CSV). Numbers come
from portal.services.reporting and portal.services.coverage; charts are SVG drawn by the templates
(templates/admin/_charts.html), each followed by the table of its numbers."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import DateField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.exports import csv_response
from portal.extensions import db
from portal.forms import BaseForm, IntegerField
from portal.forms.auth import ConfirmForm
from portal.models import utcnow
from portal.routing import MAX_ID
from portal.services import audit, coverage, reporting

# --- forms ---------------------------------------------------------------------------------------------------------


class PeriodForm(BaseForm):
    class Meta:
        csrf = False  # a GET form: it changes nothing

    period = SelectField(
        "Period",
        choices=[("month", "Month"), ("quarter", "Quarter"), ("year", "Year"), ("custom", "Custom dates")],
        default="quarter",
    )
    on = DateField("Holding the day", validators=[Optional()], description="The month, quarter or year of this day.")
    start = DateField("From", validators=[Optional()], description="Custom dates: first day (included).")
    end = DateField("To", validators=[Optional()], description="Custom dates: last day (included).")


class RefreshForm(PeriodForm):
    """ "Refresh now": the period's figures computed and kept (a POST with its CSRF token)."""

    class Meta:
        csrf = True


class ValueForm(BaseForm):
    type_id = HiddenField()
    value = IntegerField(
        "Value",
        validators=[InputRequired("Give a value."), NumberRange(min=0, max=reporting.MAX_VALUE)],
    )


class TargetForm(BaseForm):
    name = StringField("Name", validators=[DataRequired("Give the target a name."), Length(max=120)])
    industry_id = SelectField("Industry", choices=[], default="")
    region_id = SelectField("Region", choices=[], default="")
    country_code = SelectField("Country", choices=[], default="")
    product_id = SelectField("Product", choices=[], default="")
    size_band_id = SelectField("Company size", choices=[], default="")
    activity_type_id = SelectField("Willing to do", choices=[], default="")
    wanted = IntegerField(
        "Advocates wanted",
        validators=[InputRequired("Say how many advocates you want."), NumberRange(min=1, max=coverage.MAX_WANTED)],
    )
    due_on = DateField("Due by", validators=[Optional()], description="Optional.")

    def fill(self, choices: dict[str, list[tuple[str, str]]]) -> TargetForm:
        for key, items in choices.items():
            getattr(self, key).choices = [("", "Any")] + items
        return self

    def to_input(self) -> coverage.TargetInput:
        def num(v):
            return int(v) if v else None

        return coverage.TargetInput(
            name=self.name.data or "",
            industry_id=num(self.industry_id.data),
            region_id=num(self.region_id.data),
            country_code=self.country_code.data or None,
            product_id=num(self.product_id.data),
            size_band_id=num(self.size_band_id.data),
            activity_type_id=num(self.activity_type_id.data),
            wanted=self.wanted.data,
            due_on=self.due_on.data,
        )


# --- the dashboard ---------------------------------------------------------------------------------------------------


def _report_page(form, board=None):
    return render_template(
        "admin/reports.html",
        form=form,
        board=board,
        labels=reporting.FATIGUE_LABELS,
        refresh_args=_period_args(board.period) if board else {},
        kept_for=reporting.max_age(),
    )


def _period_args(period: reporting.Period) -> dict:
    if period.kind == "custom":
        return {"period": "custom", "start": period.start.isoformat(), "end": period.last_day.isoformat()}
    return {"period": period.kind, "on": period.start.isoformat()}


@bp.route("/reports")
@unit_of_work  # a refused period (custom dates the wrong way round, ...) is said on the form, 422
def reports():
    form = PeriodForm(request.args)
    if not form.validate():
        return _report_page(form), 422
    refused_form(form, _report_page)
    period = reporting.period_for(form.period.data, form.on.data or utcnow().date(), form.start.data, form.end.data)
    return _report_page(form, reporting.dashboard(db.session, period))


@bp.route("/reports/refresh", methods=["POST"])
@unit_of_work
def reports_refresh():
    """The period's figures computed now and kept, so the next views read them (audited)."""
    form = RefreshForm()
    refused_back_to(url_for("admin.reports"), target_in_url=False)
    if not form.validate_on_submit():
        flash("The period could not be read; choose it again.", "error")
        return redirect(url_for("admin.reports"))
    period = reporting.period_for(form.period.data, form.on.data or utcnow().date(), form.start.data, form.end.data)
    reporting.keep(db.session, reporting.figures(db.session, period), current_user.id)
    flash(f"The figures of {period.label} are up to date.", "success")
    return redirect(url_for("admin.reports", **_period_args(period)))


# --- activity values -------------------------------------------------------------------------------------------------


def _values_page(form=None, failed_type=None):
    return render_template(
        "admin/reports_values.html",
        rows=reporting.value_rows(db.session),
        currency=reporting.currency(),
        form=form or ValueForm(),
        failed_type=failed_type,
    )


@bp.route("/reports/values", methods=["GET", "POST"])
@unit_of_work
def report_values():
    if request.method == "GET":
        return _values_page()
    form = ValueForm()
    try:
        type_id = int(form.type_id.data)
    except (TypeError, ValueError):
        abort(400)
    if not 0 < type_id <= MAX_ID:
        abort(400)
    if not form.validate_on_submit():
        return _values_page(form, type_id), 422
    refused_form(form, lambda f: _values_page(f, type_id))  # e.g. the type was removed: said above the table
    value = reporting.set_value(db.session, type_id, form.value.data, current_user.id)
    flash(f"The value is now {value:,} {reporting.currency()} from today on; past activities keep theirs.", "success")
    return redirect(url_for("admin.report_values"))


# --- coverage ---------------------------------------------------------------------------------------------------


def _coverage_page(form):
    return render_template(
        "admin/coverage.html",
        rows=coverage.coverage(db.session),
        form=form,
        days=coverage.DEMAND_DAYS,
        retire_form=ConfirmForm(),
    )


@bp.route("/coverage")
def coverage_page():
    return _coverage_page(TargetForm(formdata=None).fill(coverage.dimension_choices(db.session)))


@bp.route("/coverage/new", methods=["POST"])
@unit_of_work
def coverage_new():
    form = TargetForm().fill(coverage.dimension_choices(db.session))
    if not form.validate_on_submit():
        return _coverage_page(form), 422
    refused_form(form, _coverage_page)
    target = coverage.create_target(db.session, form.to_input(), current_user.id)
    flash(f"Target “{target.name}” added.", "success")
    return redirect(url_for("admin.coverage_page"))


def _edit_page(form, target_id):
    return render_template("admin/coverage_form.html", form=form, target_id=target_id)


@bp.route("/coverage/<int:target_id>/edit", methods=["GET", "POST"])
@unit_of_work
def coverage_edit(target_id):
    target = coverage.get_target(db.session, target_id)
    choices = coverage.dimension_choices(db.session)
    if request.method == "GET":
        form = TargetForm(formdata=None, obj=target).fill(choices)
        for key in coverage.DIMENSIONS:
            value = getattr(target, key)
            getattr(form, key).data = "" if value is None else str(value)
        return _edit_page(form, target_id)
    form = TargetForm().fill(choices)
    if not form.validate_on_submit():
        return _edit_page(form, target_id), 422
    refused_form(form, lambda f: _edit_page(f, target_id))
    coverage.update_target(db.session, target_id, form.to_input(), current_user.id)
    flash(f"Target “{form.name.data}” saved.", "success")
    return redirect(url_for("admin.coverage_page"))


@bp.route("/coverage/<int:target_id>/retire", methods=["POST"])
@unit_of_work
def coverage_retire(target_id):
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.coverage_page"))
    refused_back_to(url_for("admin.coverage_page"))
    target = coverage.retire_target(db.session, target_id, current_user.id)
    flash(f"Target “{target.name}” retired.", "success")
    return redirect(url_for("admin.coverage_page"))


@bp.route("/coverage/export", methods=["POST"])
@unit_of_work
def coverage_export():
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.coverage_page"))
    rows = coverage.coverage(db.session)
    audit.record(db.session, "export.coverage", current_user.id, None, filters={})
    return csv_response(f"coverage-{utcnow():%Y%m%d-%H%M%S}.csv", coverage.CSV_HEADER, coverage.csv_rows(rows))
