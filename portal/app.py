"""The application factory: it wires, in named steps, and does nothing else."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from jinja2 import select_autoescape
from werkzeug.middleware.proxy_fix import ProxyFix

from admin import bp as admin_bp
from portal import templating
from portal.blueprints import account, asks, auth, main, opportunities, profile, recognition, sso
from portal.cli import GROUPS
from portal.config import load_config
from portal.database import begin_write_for_unsafe_methods, configure_engine
from portal.errors import register_errorhandlers as register_error_pages
from portal.extensions import csrf, db, limiter, login_manager, mail, migrate
from portal.routing import BoundedIntConverter
from portal.security import TrustedHostsMiddleware, set_security_headers  # (also registers the user loader)
from portal.services import badges, nominations, references
from portal.services import sso as sso_service
from portal.services.outbox import deliver_after_appcontext, deliver_after_request
from search.cli import search_cli
from search.indexing import apply_after_appcontext, apply_after_request
from search.seam import init_app as init_search
from search.views import bp as search_bp
from staff import bp as staff_bp

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def files_folder() -> Path:
    """Where templates/, static/ and migrations/ are: inside the package in a wheel (setup.py puts them there),
    beside it in the source tree (editable installs included)."""
    return PACKAGE if (PACKAGE / "templates").is_dir() else ROOT


def create_app(test_config: dict | None = None) -> Flask:
    files = files_folder()
    app = Flask(
        "portal",
        # Installed from a wheel: Flask's default for an installed package, <prefix>/var/portal-instance.
        instance_path=str(ROOT / "instance") if files == ROOT else None,
        instance_relative_config=True,
        template_folder=str(files / "templates"),
        static_folder=str(files / "static"),
    )
    load_config(app, test_config)
    register_middleware(app)
    configure_jinja(app)
    register_extensions(app)
    register_signals(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_hooks(app)
    register_commands(app)
    return app


def register_middleware(app: Flask) -> None:
    """Refuse hosts not in TRUSTED_HOSTS with a plain 400 (before Flask, whose error pages need a host
    to build their links); behind a reverse proxy, trust its X-Forwarded-* headers, as many hops as
    configured (0: ignore them, so a client talking to the app directly cannot forge its address,
    scheme or host)."""
    app.wsgi_app = TrustedHostsMiddleware(app.wsgi_app, app.config)
    hops = {name: app.config[f"PROXY_FIX_X_{name.upper()}"] for name in ("for", "proto", "host", "port", "prefix")}
    if any(hops.values()):
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=hops["for"],
            x_proto=hops["proto"],
            x_host=hops["host"],
            x_port=hops["port"],
            x_prefix=hops["prefix"],
        )


def configure_jinja(app: Flask) -> None:
    # Escape user content in every template, plain-text emails included.
    app.jinja_env.autoescape = select_autoescape(enabled_extensions=("html", "htm", "xml", "txt"), default=True)
    templating.register(app)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    migrate.init_app(app, db, directory=str(files_folder() / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    sso_service.init_app(app)  # an OpenID Connect client per configured provider (Authlib)
    init_search(app, db.session)  # the backend, its start-up check (Whoosh internals), the listeners


def register_signals(app: Flask) -> None:
    """Connect the receivers of portal.signals (what follows a credit); once per process, however many apps."""
    badges.connect()
    nominations.connect()
    references.connect()


def register_blueprints(app: Flask) -> None:
    # Before any rule is added: blueprints add their rules when registered (importing them adds none).
    app.url_map.converters["int"] = BoundedIntConverter
    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(recognition.bp)
    app.register_blueprint(opportunities.bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(asks.bp)


def register_errorhandlers(app: Flask) -> None:
    register_error_pages(app)


def register_hooks(app: Flask) -> None:
    """An unsafe request begins its unit of work as a writer; its view's unit_of_work commits it, inside
    the view call, so every after_request hook below runs after the commit: mail is sent and the index
    updated only for committed work (after_request hooks run in reverse order of registration)."""
    app.before_request(begin_write_for_unsafe_methods)
    app.after_request(set_security_headers)
    app.after_request(deliver_after_request)
    app.after_request(apply_after_request)
    app.teardown_appcontext(apply_after_appcontext)
    app.teardown_appcontext(deliver_after_appcontext)


def register_commands(app: Flask) -> None:
    for group in [*GROUPS, search_cli]:
        app.cli.add_command(group)
