"""flask users create-admin | create-staff | approve | suspend"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from portal.cli.common import transaction
from portal.extensions import db
from portal.models import Role
from portal.services import accounts

users_cli = AppGroup("users", help="Manage accounts.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _create(email: str, role: Role, name: str | None, password_stdin: bool, no_password: bool) -> None:
    password = None if no_password else _read_password(password_stdin)
    with transaction():  # a DomainError (the address is taken) ends the command with its message
        user = accounts.create_internal_user(db.session, email, role, name=name, password=password)
        if password is None:
            accounts.request_password_reset(db.session, user.email)
    click.echo(
        f"Created {role.value} {user.email}." + (" A link to set the password was emailed." if password is None else "")
    )


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def create_admin(email, name, password_stdin):
    """Create an active admin account."""
    _create(email, Role.ADMIN, name, password_stdin, no_password=False)


@users_cli.command("create-staff")
@click.argument("email")
@click.option("--name", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--email-link", is_flag=True, help="Set no password; email a link to choose one.")
def create_staff(email, name, password_stdin, email_link):
    """Create an active staff account."""
    _create(email, Role.STAFF, name, password_stdin, no_password=email_link)


@users_cli.command("approve")
@click.argument("email")
def approve(email):
    """Approve an advocate who has verified their email."""
    with transaction():
        user = accounts.find_user(db.session, email)
        accounts.approve(db.session, user, actor_id=None, via="cli")
    click.echo(f"Approved {user.email}; they have been emailed.")


@users_cli.command("suspend")
@click.argument("email")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
def suspend(email, reason):
    """Suspend an account and end all its sessions."""
    with transaction():
        user = accounts.find_user(db.session, email)
        accounts.suspend(db.session, user, actor_id=None, reason=reason)
    click.echo(f"Suspended {user.email}.")
