"""Friendly error pages; JSON for clients that ask for it."""

from __future__ import annotations

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from portal.extensions import db

MESSAGES = {
    400: ("Something in that request was not right", "Please go back, reload the page and try again."),
    403: ("You do not have access to this page", "If you think you should, contact the program team."),
    404: ("We could not find that page", "The link may be old, or the page may have moved."),
    405: ("That action is not allowed here", "Use the buttons and forms on the page instead."),
    413: ("That upload is too large", "Please send a smaller file or less text."),
    429: ("Too many attempts", "Please wait a minute before you try again."),
    500: ("Something went wrong on our side", "We have been told. Please try again in a moment."),
}


def _forget_unreadable_body() -> None:
    """Templates build forms (the sign-out button) from the request body. When the body itself is the
    error (too large, malformed JSON), reading it again would raise inside this handler and turn the
    friendly page into a bare 500; treat such a body as empty instead."""
    for attr in ("form", "files"):
        try:
            getattr(request, attr)
        except Exception:
            request.__dict__[attr] = ImmutableMultiDict()
    if request.is_json:
        try:
            request.get_json()
        except Exception:
            request._cached_json = (None, None)


def render_error(code: int, detail: str | None = None):
    title, hint = MESSAGES.get(code, MESSAGES[500])
    _forget_unreadable_body()
    if request.accept_mimetypes.best == "application/json":
        return {"error": title, "detail": detail or hint}, code
    template = "admin/error.html" if request.blueprint == "admin" else "errors/error.html"
    return render_template(template, code=code, title=title, hint=detail or hint), code


def register_errorhandlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(err):
        return render_error(400, "Your form expired or was sent from another page. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(err):
        if err.code in MESSAGES:
            resp = render_error(err.code)
            if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
                return resp[0], resp[1], {"Allow": ", ".join(err.valid_methods)}
            return resp
        return err

    @app.errorhandler(500)
    def server_error(err):
        db.session.rollback()
        return render_error(500)
