"""Friendly error pages; JSON for clients that ask for it; and the request's unit of work: its one
commit, and how a refused action (a ``DomainError``) is answered. ``unit_of_work`` says how."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import abort, flash, g, make_response, redirect, render_template, request
from flask import session as browser_session
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from portal.database import SAFE_METHODS
from portal.extensions import db
from portal.models import Role
from portal.services.errors import DomainError, InvalidToken, NotFound

MESSAGES = {
    400: ("Something in that request was not right", "Please go back, reload the page and try again."),
    403: ("You do not have access to this page", "If you think you should, contact the program team."),
    404: ("We could not find that page", "The link may be old, or the page may have moved."),
    405: ("That action is not allowed here", "Use the buttons and forms on the page instead."),
    409: ("That cannot be done now", "Things changed since the page was loaded. Reload it and try again."),
    413: ("That upload is too large", "Please send a smaller file or less text."),
    429: ("Too many attempts", "Please wait a minute before you try again."),
    500: ("Something went wrong on our side", "We have been told. Please try again in a moment."),
}


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


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
    if wants_json():
        return {"error": title, "detail": detail or hint}, code
    # The admin area's layout (its navigation) only for admins: anyone else refused there, or lost on a
    # missing admin page, gets the portal's layout, with no links they cannot open.
    # (The user as already loaded for this request: an error page never queries, the database may be why it failed.)
    in_admin = request.blueprint == "admin" and getattr(g.get("_login_user"), "role", None) == Role.ADMIN
    template = "admin/error.html" if in_admin else "errors/error.html"
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


# --- the request's unit of work ------------------------------------------------------------------------

FLASH = "flash"  # a form refusal's target: the message as a flash message on the page shown again

_REFUSAL = "unit_of_work_refusal"


def keeps_writes(err: DomainError) -> bool:
    """Whether what was written before ``err`` was raised stands (the request commits it, then answers):
    the error class says so (``DomainError.keeps_writes``: a wrong password counts toward the lock)."""
    return err.keeps_writes


def _for_type(err: DomainError, mapping: Mapping[type, Any], default):
    """The value ``mapping`` gives the most specific class of ``err``, else ``default``."""
    for cls in type(err).__mro__:
        if cls in mapping:
            return mapping[cls]
    return default


@dataclass(frozen=True)
class _FormRefusal:
    form: Any
    page: Callable[[Any], Any]
    field: Any
    fields: Mapping[type, Any]
    status: int
    statuses: Mapping[type, int]


@dataclass(frozen=True)
class _BackRefusal:
    url: str
    code: int
    messages: Mapping[type, Callable[[DomainError], str]]
    target_in_url: bool


@dataclass(frozen=True)
class _LinkRefusal:
    pass


def refused_form(
    form,
    page: Callable[[Any], Any],
    *,
    field=None,
    fields: Mapping[type, Any] | None = None,
    status: int = 422,
    statuses: Mapping[type, int] | None = None,
) -> None:
    """Declare, before calling the service, that a refusal shows ``form`` again with the user's input.

    ``page(form)`` renders the page (a body, or a body and status); the message goes to ``field`` (a
    field of the form; None: the form's own errors; FLASH: a flash message), or to the target
    ``fields`` gives the error's class; the status is ``status``, or the one ``statuses`` gives it."""
    setattr(g, _REFUSAL, _FormRefusal(form, page, field, dict(fields or {}), status, dict(statuses or {})))


def refused_back_to(
    url: str,
    *,
    code: int = 302,
    messages: Mapping[type, Callable[[DomainError], str]] | None = None,
    target_in_url: bool = True,
) -> None:
    """Declare, before calling the service, that a refusal flashes its message and redirects to ``url``
    (with ``code``); ``messages`` phrases the flash for some error classes (``fn(err) -> str``).

    ``target_in_url``: the button acts on what its URL names, so a ``NotFound`` is a 404; False when
    the target comes from the form (an order's reward, retired since the page was shown): then a
    ``NotFound`` is flashed like any other refusal."""
    setattr(g, _REFUSAL, _BackRefusal(url, code, dict(messages or {}), target_in_url))


def refused_as_link() -> None:
    """Declare that any refusal from here on shows the "link not valid" page (a link from an email)."""
    setattr(g, _REFUSAL, _LinkRefusal())


def refusal_response(err: DomainError, declared=None):
    """The answer to a refused action, in this order:

    1. an ``InvalidToken`` (a link from an email, whatever the view), or any error where the view
       declared ``refused_as_link``: the "link not valid" page, 400;
    2. a form page (``refused_form``): the form shown again with the user's input and the message on
       it, with the declared status (422; 409 for a Conflict where the page says so; 401 for sign-in);
    3. a client asking for JSON: ``{"error": message}`` with the error's own status (400, 403, 404, 409);
    4. a ``NotFound``: the 404 page (what the URL names does not exist or is not the user's), except
       from a button whose target comes from its form (``target_in_url=False``): see 5;
    5. a button (``refused_back_to``): the message flashed as an error and a redirect back (302, or the
       303 declared); a redirect cannot carry a 4xx, so browsers get the message on the next page;
    6. anything else: the error page with the message and the error's own status.
    """
    if isinstance(err, InvalidToken) or isinstance(declared, _LinkRefusal):
        return render_template("auth/link_invalid.html", message=err.message), 400
    if isinstance(declared, _FormRefusal):
        target = _for_type(err, declared.fields, declared.field)
        if target is None:
            declared.form.form_errors.append(err.message)
        elif isinstance(target, str) and target == FLASH:
            flash(err.message, "error")
        else:
            target.errors = [*target.errors, err.message]
        response = make_response(declared.page(declared.form))
        response.status_code = _for_type(err, declared.statuses, declared.status)
        return response
    if wants_json():
        return {"error": err.message}, err.status_code
    if isinstance(err, NotFound) and (not isinstance(declared, _BackRefusal) or declared.target_in_url):
        abort(404)
    if isinstance(declared, _BackRefusal):
        phrase = _for_type(err, declared.messages, None)
        flash(phrase(err) if phrase else err.message, "error")
        return redirect(declared.url, code=declared.code)
    return render_error(err.status_code, err.message)


def _commit(browser_before: dict | None) -> None:
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if browser_before is not None:  # nothing happened: no success message, no sign-in or sign-out
            browser_session.clear()
            browser_session.update(browser_before)
        raise


def unit_of_work(view):
    """The request's one commit, and the one place where refused actions are answered.

    Every view that accepts an unsafe method (POST, ...) is wrapped in it (a test walks the URL map).
    Its transaction was begun by ``begin_write_for_unsafe_methods`` (SQLite: as a writer); services
    only flush. Then:

    - the view returns: an unsafe request commits, once (a safe one never does: GET does not write);
      if that commit fails, it is rolled back, the browser's session (flash messages, sign-in) is put
      back as it was and the error propagates (a 500). Email and index updates wait for the commit:
      the outbox sends after the response only rows that were committed; the search index is
      updated only after an ``after_commit``, so a failed commit sends and indexes nothing;
    - the view (a service) raises a ``DomainError``: rolled back, or committed first when the error
      keeps what was written before it (``keeps_writes``: a wrong password's failure count and lock);
      then answered by ``refusal_response`` as the view declared it (``refused_form``,
      ``refused_back_to``, ``refused_as_link``): forms shown again with the input and a 4xx, buttons
      flash and redirect (JSON clients: the error's 4xx), a ``NotFound`` is a 404;
    - any other exception (``abort``, a bug): rolled back, and it propagates.
    """

    @wraps(view)
    def run(*args, **kwargs):
        g.pop(_REFUSAL, None)
        unsafe = request.method not in SAFE_METHODS
        browser_before = copy.deepcopy(dict(browser_session)) if unsafe else None
        try:
            rv = view(*args, **kwargs)
        except DomainError as err:
            declared = g.pop(_REFUSAL, None)
            if unsafe and keeps_writes(err):
                _commit(browser_before)
            else:
                db.session.rollback()
            return refusal_response(err, declared)
        except BaseException:
            db.session.rollback()
            raise
        g.pop(_REFUSAL, None)
        if unsafe:
            _commit(browser_before)
        return rv

    run.in_unit_of_work = True
    return run


def in_unit_of_work(view) -> bool:
    """Whether a view function (as registered, under any decorators that use functools.wraps) is wrapped."""
    return getattr(view, "in_unit_of_work", False) is True
