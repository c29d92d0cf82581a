"""Bare extension objects; the factory initialises them. Nothing here touches an app."""

import smtplib

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Connection, Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal.models.base import Base

# Models subclass portal.models.base.Base (plain SQLAlchemy 2 declarative); the extension shares its metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class _TimeoutConnection(Connection):
    """Flask-Mail 0.10 opens smtplib.SMTP without a timeout: a server that accepts the connection and
    never answers would block the sender forever. This one gives up after MAIL_TIMEOUT seconds."""

    def configure_host(self):
        state = self.mail
        timeout = getattr(state, "timeout", None) or 10
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=timeout)
        host.set_debuglevel(int(state.debug))
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


class TimeoutMail(Mail):
    """Flask-Mail with MAIL_TIMEOUT applied to the SMTP connection."""

    def init_app(self, app):
        state = super().init_app(app)
        state.timeout = app.config.get("MAIL_TIMEOUT", 10)
        return state

    def connect(self):
        return _TimeoutConnection(current_app.extensions["mail"])


mail = TimeoutMail()
limiter = Limiter(key_func=get_remote_address)
