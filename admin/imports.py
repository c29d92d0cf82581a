"""Importing advocates from a CSV file: upload, map the columns, preview every row's problems, import
(invitations are sent), follow the job. The rules are in portal.services.imports and .invitations."""

from __future__ import annotations

from flask import abort, after_this_request, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectField, SubmitField

from admin.views import bp
from portal.errors import refused_back_to, refused_form, unit_of_work
from portal.extensions import csrf, db
from portal.forms import BaseForm
from portal.forms.auth import ConfirmForm
from portal.models import ImportJob, ImportStatus
from portal.services import imports

UPLOAD_SLACK = 64 * 1024  # the multipart envelope around the file


class UploadForm(BaseForm):
    file = FileField(
        "CSV file",
        validators=[FileRequired("Choose the CSV file to upload.")],
        description="UTF-8, UTF-16 or Windows-1252; comma or semicolon separated; a header row first.",
        render_kw={"accept": ".csv,text/csv"},
    )
    submit = SubmitField("Upload")


def mapping_form(job: ImportJob, formdata=None):
    """One choice per column of the file: the field it fills, or nothing."""
    choices = [("", "Ignore this column"), *imports.FIELDS.items()]

    class MappingForm(BaseForm):
        submit = SubmitField("Save the mapping and preview")

    for i, column in enumerate(job.header):
        setattr(MappingForm, f"col_{i}", SelectField(column, choices=choices, default=""))
    data = {f"col_{i}": (job.mapping or {}).get(c, "") for i, c in enumerate(job.header)}
    form = MappingForm(formdata=formdata, data=data) if formdata is not None else MappingForm(formdata=None, data=data)
    form.columns = [(form[f"col_{i}"], column) for i, column in enumerate(job.header)]
    return form


def _job(job_id: int) -> ImportJob:
    return db.get_or_404(ImportJob, job_id)


def _list_page(form, status=200):
    jobs = imports.recent_jobs(db.session)
    return render_template(
        "admin/imports.html",
        form=form,
        jobs=jobs,
        interrupted={j.id for j in jobs if imports.interrupted(j)},
        limit_mb=current_app.config["IMPORT_MAX_BYTES"] // (1024 * 1024),
    ), status


@bp.route("/imports")
def imports_list():
    return _list_page(UploadForm(formdata=None))


@bp.route("/imports/upload", methods=["POST"])
@csrf.exempt  # checked by UploadForm, after this route's own size limit is set (the global one is smaller)
@unit_of_work
def import_upload():
    request.max_content_length = current_app.config["IMPORT_MAX_BYTES"] + UPLOAD_SLACK
    try:
        request.files  # noqa: B018  (parse the body now, under this limit)
    except RequestEntityTooLarge:
        flash(
            f"The file is larger than {current_app.config['IMPORT_MAX_BYTES'] // (1024 * 1024)} MB. "
            "Split it and upload each part.",
            "error",
        )
        return _list_page(UploadForm(formdata=None), 413)
    form = UploadForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            flash("Your form expired or was sent from another page. Reload the page and try again.", "error")
        return _list_page(form, 422)
    refused_form(form, _list_page, field=form.file)
    upload = form.file.data
    job = imports.upload(db.session, upload.filename or "upload.csv", upload.read(), current_user.id)
    flash(f"Read {job.total} row(s) of {job.filename}. Check which field each column fills.", "success")
    return redirect(url_for("admin.import_mapping", job_id=job.id))


def _mapping_page(form, job, status=200):
    return render_template("admin/import_mapping.html", form=form, job=job, fields=imports.FIELDS), status


@bp.route("/imports/<int:job_id>/mapping", methods=["GET", "POST"])
@unit_of_work
def import_mapping(job_id):
    job = _job(job_id)
    if job.status not in (ImportStatus.UPLOADED, ImportStatus.MAPPED):
        return redirect(url_for("admin.import_job", job_id=job.id))
    form = mapping_form(job, request.form if request.method == "POST" else None)
    if request.method == "POST":
        if not form.validate_on_submit():
            return _mapping_page(form, job, 422)
        refused_form(form, lambda f: _mapping_page(f, job), field=None)
        mapping = {column: field.data for field, column in form.columns if field.data}
        imports.set_mapping(db.session, job, mapping, current_user.id)
        return redirect(url_for("admin.import_job", job_id=job.id))
    return _mapping_page(form, job)


@bp.route("/imports/<int:job_id>")
def import_job(job_id):
    job = _job(job_id)
    preview = None
    if job.status in (ImportStatus.UPLOADED, ImportStatus.MAPPED):
        page = request.args.get("page", 1, type=int) or 1
        preview = imports.preview(db.session, job, page, only_problems=request.args.get("problems") == "1")
    return render_template(
        "admin/import_job.html",
        job=job,
        preview=preview,
        only_problems=request.args.get("problems") == "1",
        start_form=ConfirmForm(),
        interrupted=imports.interrupted(job),
        running=job.status == ImportStatus.RUNNING and not imports.interrupted(job),
    )


@bp.route("/imports/<int:job_id>/start", methods=["POST"])
@unit_of_work
def import_start(job_id):
    return _run(job_id, imports.start, "The import has started: this page follows it.")


@bp.route("/imports/<int:job_id>/resume", methods=["POST"])
@unit_of_work
def import_resume(job_id):
    """Run again an import that failed or was cut off (a restart): who it invited is not invited again."""
    return _run(job_id, imports.resume, "The import goes on: the people it invited before are not invited again.")


def _run(job_id: int, mark_running, message: str):
    """Mark the job running (``imports.start`` or ``resume``), then run it once that is committed."""
    job = _job(job_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    refused_back_to(url_for("admin.import_job", job_id=job.id))
    mark_running(db.session, job, current_user.id)
    flash(message, "success")
    app, inline = current_app._get_current_object(), current_app.config["IMPORT_RUN"] == "inline"

    @after_this_request  # runs after unit_of_work has committed the job as running
    def run_it(response):
        imports.run_in_background(app, job_id, wait=inline)
        return response

    return redirect(url_for("admin.import_job", job_id=job_id))
