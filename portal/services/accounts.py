"""Account rules: registration, verification, approval, login, lockout, passwords, suspension."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.models import Consent, Role, Status, User, utcnow
from portal.services import audit, paging, settings, sso
from portal.services.errors import Conflict, DomainError, InvalidToken, NotFound
from portal.services.outbox import external_url, queue_email
from portal.services.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from portal.services.profiles import get_profile
from portal.services.referrals import credit_referral
from portal.services.tokens import fingerprint, make_token, read_token

VERIFY = "verify-email"
RESET = "reset-password"


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _searchable(email: str) -> str | None:
    """The address as stored addresses are, or None if it cannot be one (no stored address has a control
    character; PostgreSQL cannot even compare NUL)."""
    email = normalize_email(email)
    return None if _CONTROL.search(email) else email


def get_by_email(session: Session, email: str) -> User | None:
    email = _searchable(email)
    return None if email is None else session.scalar(select(User).where(User.email == email))


# --- registration and verification -------------------------------------------------------------


@dataclass
class Registration:
    name: str
    email: str
    password: str
    company: str
    job_title: str
    accepted_terms: bool
    ip_address: str | None = None
    referred_by_id: int | None = None


def _verify_state(user: User) -> str:
    return fingerprint(user.email, user.status.value, user.email_verified_at)


def verification_link(user: User) -> str:
    token = make_token(VERIFY, user.id, _verify_state(user))
    return external_url("auth.verify_email", token=token)


def register_advocate(session: Session, reg: Registration) -> User | None:
    """Create an unverified advocate and queue the verification email.

    If the email is taken, nothing is created and the owner is told instead; the caller answers
    the same way in both cases. Returns the new user or None.
    """
    if not reg.accepted_terms:
        raise DomainError("Please accept the program terms to join.")
    email = normalize_email(reg.email)
    check_password_policy(reg.password, email)
    existing = get_by_email(session, email)
    if existing is not None:
        hash_password(reg.password)  # the same work as a new account: the answer's timing tells nothing
        if existing.status != Status.DELETED:
            queue_email(
                session,
                to=existing.email,
                subject="Someone tried to register with your email",
                template="already_registered",
                user_id=existing.id,
                name=existing.name,
                login_url=external_url("auth.login"),
                reset_url=external_url("auth.forgot_password"),
            )
        return None
    user = new_advocate(session, reg, email, hash_password(reg.password))
    _send_verification(session, user)
    return user


def new_advocate(session: Session, reg: Registration, email: str, password_hash: str | None) -> User:
    """An unverified advocate with the program terms' consent (time, version, address) recorded: every way
    of joining starts here (the form, single sign-on, an invitation)."""
    user = User(
        email=email,
        name=reg.name.strip(),
        company=reg.company.strip() or None,
        job_title=reg.job_title.strip() or None,
        password_hash=password_hash,
        role=Role.ADVOCATE,
        status=Status.UNVERIFIED,
        referred_by_id=reg.referred_by_id,
    )
    session.add(user)
    session.flush()
    session.add(
        Consent(
            user_id=user.id,
            kind="program_terms",
            version=current_app.config["TERMS_VERSION"],
            ip_address=reg.ip_address,
        )
    )
    return user


def register_verified_advocate(session: Session, reg: Registration) -> User:
    """A registration whose address an identity provider has verified (single sign-on): no password and
    no verification email; then as a verified registration, approved or waiting for an admin. The
    caller made sure no account has the address (an existing one is linked, never duplicated)."""
    if not reg.accepted_terms:
        raise DomainError("Please accept the program terms to join.")
    email = normalize_email(reg.email)
    if get_by_email(session, email) is not None:
        raise Conflict("An account already uses this address: sign in to it and link your identity in its settings.")
    user = new_advocate(session, reg, email, None)
    audit.record(session, "user.register", user.id, user, via="sso")
    _address_verified(session, user)
    session.flush()
    return user


def _send_verification(session: Session, user: User) -> None:
    queue_email(
        session,
        to=user.email,
        subject="Confirm your email address",
        template="verify_email",
        user_id=user.id,
        name=user.name,
        verify_url=verification_link(user),
    )


def resend_verification(session: Session, user: User) -> None:
    if user.status == Status.UNVERIFIED:
        _send_verification(session, user)


def verify_email(session: Session, token: str) -> User:
    data = read_token(VERIFY, token, current_app.config["VERIFY_TOKEN_MAX_AGE"])
    user = session.get(User, data["u"])
    if user is None or user.status != Status.UNVERIFIED or data.get("s") != _verify_state(user):
        raise InvalidToken("This link has already been used or is no longer valid.")
    _address_verified(session, user)
    session.flush()
    return user


def _address_verified(session: Session, user: User) -> None:
    """The owner proved the address (a verification or reset link): approve, or wait for an admin."""
    user.email_verified_at = utcnow()
    if settings.get(session, "auto_approve_advocates"):
        _activate(session, user, actor_id=None)
    else:
        user.status = Status.PENDING
        _notify_admins_of_pending(session, user)


def notify_admins_of_pending(session: Session, user: User) -> None:
    """Tell the active admins that ``user`` waits for approval (a verified registration, a nominee)."""
    _notify_admins_of_pending(session, user)


def _notify_admins_of_pending(session: Session, user: User) -> None:
    admins = session.scalars(select(User).where(User.role == Role.ADMIN, User.status == Status.ACTIVE)).all()
    for admin in admins:
        queue_email(
            session,
            to=admin.email,
            subject="A new advocate is waiting for approval",
            template="admin_pending",
            user_id=admin.id,
            about_user_id=user.id,
            name=admin.name,
            applicant=user,
            review_url=external_url("admin.pending"),
        )


def _activate(session: Session, user: User, actor_id: int | None) -> None:
    user.status = Status.ACTIVE
    user.approved_at = utcnow()
    if user.role == Role.ADVOCATE:
        # The profile exists from the day the account is active, so no page has to create it on a GET.
        get_profile(session, user)
    queue_email(
        session,
        to=user.email,
        subject="Welcome: your advocate account is approved",
        template="approved",
        user_id=user.id,
        name=user.name,
        login_url=external_url("auth.login"),
    )
    session.flush()
    credit_referral(session, user)


def approve(session: Session, user: User, actor_id: int | None, via: str = "admin") -> User:
    # Lock the row and read the status again: two admins approving at once must not both succeed.
    session.refresh(user, with_for_update=True)
    if user.status == Status.ACTIVE:
        raise Conflict(f"{user.email} is already active.")
    if user.status != Status.PENDING:
        raise Conflict(f"{user.email} cannot be approved while {user.status.value.replace('_', ' ')}.")
    _activate(session, user, actor_id)
    audit.record(session, "user.approve", actor_id, user, via=via)
    session.flush()
    return user


APPROVE_AT_ONCE = 500  # the most applicants one bulk approval takes (the registrations and the advocate list)


def approve_many(session: Session, user_ids: list[int], actor_id: int) -> tuple[list[User], int]:
    """Approve each applicant still waiting (each emailed and audited as one approval); returns the
    approved and how many were skipped (decided meanwhile by another admin, or not applicants)."""
    approved, skipped = [], 0
    for user_id in sorted(set(user_ids)):
        user = session.get(User, user_id)
        if user is None or user.role != Role.ADVOCATE or user.status != Status.PENDING:
            skipped += 1
            continue
        try:
            with session.begin_nested():
                approve(session, user, actor_id, via="admin-bulk")
        except Conflict:  # approved or declined by someone else since the page was shown
            skipped += 1
            continue
        approved.append(user)
    return approved, skipped


def reject(session: Session, user: User, actor_id: int | None, reason: str = "") -> User:
    if user.status != Status.PENDING:
        raise Conflict("Only accounts waiting for approval can be declined.")
    user.status = Status.SUSPENDED
    user.rotate_session_token()
    queue_email(
        session,
        to=user.email,
        subject="About your advocate application",
        template="declined",
        user_id=user.id,
        name=user.name,
        reason=reason,
    )
    audit.record(session, "user.decline", actor_id, user, reason=reason)
    return user


def _active_admins(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.status == Status.ACTIVE)
    )


def _keep_an_admin(session: Session, user: User, actor_id: int | None, what: str) -> None:
    """The guards on taking an admin away: not one's own admin role or account, not the last active admin."""
    if actor_id is not None and user.id == actor_id:
        raise Conflict(f"You cannot {what} yourself: ask another admin.")
    if user.role == Role.ADMIN and user.status == Status.ACTIVE and _active_admins(session) <= 1:
        raise Conflict(f"{user.name} is the last active admin: make someone else an admin first.")


def suspend(session: Session, user: User, actor_id: int | None, reason: str, notify: bool = False) -> User:
    """Suspend the account: every session and remember cookie ends, search and feeds stop showing them.
    ``notify``: email them the reason (an admin's suspension does; the CLI's may not)."""
    if user.status == Status.DELETED:
        raise Conflict("Deleted accounts cannot be suspended.")
    if user.status == Status.SUSPENDED:
        raise Conflict(f"{user.name} is already suspended.")
    _keep_an_admin(session, user, actor_id, "suspend")
    user.status = Status.SUSPENDED
    user.rotate_session_token()  # ends every session and remember cookie
    if notify:
        queue_email(
            session,
            to=user.email,
            subject="Your advocate account is suspended",
            template="suspended",
            user_id=user.id,
            name=user.name,
            reason=reason,
        )
    audit.record(session, "user.suspend", actor_id, user, reason=reason)
    return user


def reactivate(session: Session, user: User, actor_id: int | None, reason: str = "") -> User:
    """Lift a suspension (not a declined application's: that person applies again): they can sign in."""
    if user.status != Status.SUSPENDED or user.approved_at is None:
        raise Conflict(f"{user.name} is not a suspended member.")
    user.status = Status.ACTIVE
    queue_email(
        session,
        to=user.email,
        subject="Your advocate account is active again",
        template="reactivated",
        user_id=user.id,
        name=user.name,
        reason=reason,
    )
    audit.record(session, "user.reactivate", actor_id, user, reason=reason)
    return user


def change_role(session: Session, user: User, role: Role, actor_id: int | None) -> User:
    """Make the person an advocate, a staff member or an admin. Their sessions end (the pages they may
    see change); an admin cannot change their own role, and the last active admin stays one."""
    if user.status == Status.DELETED:
        raise Conflict("Deleted accounts have no role to change.")
    if role == user.role:
        raise Conflict(f"{user.name} is already {role.value}.")
    if user.role == Role.ADMIN or (actor_id is not None and user.id == actor_id):
        _keep_an_admin(session, user, actor_id, "change the role of")
    before = user.role
    user.role = role
    user.rotate_session_token()
    audit.record(session, "user.role", actor_id, user, before=before.value, after=role.value)
    return user


def create_internal_user(
    session: Session,
    email: str,
    role: Role,
    name: str | None = None,
    password: str | None = None,
    actor_id: int | None = None,
) -> User:
    email = normalize_email(email)
    try:  # the CLI hands the address over unchecked (the web forms check it with WTForms' Email())
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as err:
        raise DomainError(f"{email!r} is not a valid email address: {err}") from None
    if get_by_email(session, email) is not None:
        raise Conflict(f"An account with {email} already exists.")
    if password is not None:
        check_password_policy(password, email)
    user = User(
        email=email,
        name=name or email.split("@")[0].replace(".", " ").title(),
        role=role,
        status=Status.ACTIVE,
        email_verified_at=utcnow(),
        approved_at=utcnow(),
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(session, f"user.create_{role.value}", actor_id, user)
    return user


# --- login and lockout -------------------------------------------------------------------------


def _is_locked(user: User, now: datetime) -> bool:
    return bool(user.locked_until and user.locked_until > now)


def _count_failure(session: Session, user: User, now: datetime) -> None:
    """One more wrong password for this account (sign-in or change-password); lock it at the limit and
    tell the owner."""
    cfg = current_app.config
    # Count the failure atomically so concurrent attempts cannot undercount.
    session.execute(update(User).where(User.id == user.id).values(failed_login_count=User.failed_login_count + 1))
    session.refresh(user, ["failed_login_count"])
    if user.failed_login_count >= cfg["LOGIN_MAX_FAILURES"]:
        user.locked_until = now + timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"])
        user.failed_login_count = 0
        queue_email(
            session,
            to=user.email,
            subject="Your account is locked for a while",
            template="account_locked",
            user_id=user.id,
            name=user.name,
            minutes=cfg["LOGIN_LOCK_MINUTES"],
            reset_url=external_url("auth.forgot_password"),
        )
        audit.record(session, "user.locked", None, user)


def _count_no_failure(session: Session) -> None:
    """The same statements as counting a failure, matching no row: a failure for an unknown (or locked)
    account takes as long as one for a known account, so timing does not tell them apart."""
    session.execute(update(User).where(User.id == -1).values(failed_login_count=User.failed_login_count + 1))
    session.scalar(select(User.failed_login_count).where(User.id == -1))


class LoginFailed(DomainError):
    keeps_writes = True  # the failure count and any lock stand

    def __init__(self):
        super().__init__(
            "The email or password is not right, or the account is locked for a while. "
            "Try again, or reset your password."
        )


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the user for a correct email and password, or raise LoginFailed.

    Unknown email, wrong password, locked, deleted: one answer. Each failure counts toward a lock;
    the owner is told when the account locks.
    """
    user = get_by_email(session, email)
    if user is None or user.status == Status.DELETED:
        verify_password(None, password)
        _count_no_failure(session)
        _sign_in_failed(session, None, "no_account")  # the address typed is not kept: it may be a password
        raise LoginFailed()
    now = utcnow()
    if _is_locked(user, now):
        verify_password(None, password)
        _count_no_failure(session)
        _sign_in_failed(session, user, "locked")
        raise LoginFailed()
    if not verify_password(user.password_hash, password):
        _count_failure(session, user, now)
        _sign_in_failed(session, user, "wrong_password")
        raise LoginFailed()
    if user.status == Status.SUSPENDED:
        _sign_in_failed(session, user, "suspended")
        raise AccountSuspended()
    if user.is_staff and sso.required_for_staff(session):
        # Only after the password was right: the refusal tells nothing to someone who does not know it.
        _sign_in_failed(session, user, "sso_required")
        raise SsoRequired()
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, "auth.sign_in", user.id, user)
    return user


def sign_in_external(session: Session, user: User | None, via: str, **details) -> User:
    """A sign-in that an identity provider vouched for (single sign-on): the same rules as a password
    sign-in for what the account allows (deleted, locked, suspended: refused and audited)."""
    if user is None or user.status == Status.DELETED:
        _sign_in_failed(session, None, "no_account")
        raise LoginFailed()
    now = utcnow()
    if _is_locked(user, now):
        _sign_in_failed(session, user, "locked")
        raise AccountLocked()
    if user.status == Status.SUSPENDED:
        _sign_in_failed(session, user, "suspended")
        raise AccountSuspended()
    user.last_login_at = now
    audit.record(session, "auth.sign_in", user.id, user, via=via, **details)
    return user


def prove_password(session: Session, user: User, password: str) -> None:
    """The person knows the account's password (linking an identity to it): checked like a sign-in, a
    wrong guess counts toward the lock and a locked account takes no guesses."""
    now = utcnow()
    if _is_locked(user, now) or user.status in (Status.DELETED, Status.SUSPENDED):
        verify_password(None, password)
        _count_no_failure(session)
        _sign_in_failed(session, user, "locked" if _is_locked(user, now) else user.status.value)
        raise LoginFailed()
    if not verify_password(user.password_hash, password):
        _count_failure(session, user, now)
        audit.record(session, "auth.password_check_failed", user.id, user)
        raise CurrentPasswordWrong("That password is not right.")


def _sign_in_failed(session: Session, user: User | None, reason: str) -> None:
    """A refused sign-in is a security event: in the audit log with who it was for (when there is an
    account), why, and the address it came from. One row whatever the reason, so the work is the same."""
    audit.record(session, "auth.sign_in_failed", None, user, reason=reason)


class AccountSuspended(DomainError):
    keeps_writes = True  # the audit entry of the refused sign-in stands

    def __init__(self):
        super().__init__("This account is suspended. Contact the program team if you think this is a mistake.")


class AccountLocked(DomainError):
    keeps_writes = True

    def __init__(self):
        super().__init__(
            "This account is locked for a while after too many wrong passwords. Try again later, "
            "or reset your password."
        )


class SsoRequired(DomainError):
    keeps_writes = True  # the audit entry of the refused sign-in stands

    def __init__(self):
        super().__init__(
            'Staff and admins sign in with the company\'s identity provider: use the "Sign in with" button below.'
        )


# --- passwords ---------------------------------------------------------------------------------


def _reset_state(user: User) -> str:
    return fingerprint(user.password_hash, user.status.value)


def request_password_reset(session: Session, email: str) -> None:
    """Email a reset link if the account exists, and otherwise a note that there is no account with this
    address. The caller answers the same either way, and the work is the same (one lookup, one message
    queued for the outbox worker), so neither the answer nor its timing tells whether the address has an
    account."""
    # Plain columns, not a User: building an ORM object only when the address is known took measurably longer.
    email, user = _searchable(email), None
    if email is not None:
        user = session.execute(
            select(User.id, User.email, User.name, User.status, User.password_hash).where(User.email == email)
        ).first()
    if user is None or user.status in (Status.DELETED, Status.SUSPENDED):
        make_token(RESET, 0, fingerprint(email or ""))  # the work of a reset link, which this message has not
        if email is not None:  # (None: a control character, which the form never lets through)
            queue_email(
                session,
                to=user.email if user is not None else email,
                subject="Your password reset request",
                template="reset_no_account",
                user_id=user.id if user is not None else None,
                forgot_url=external_url("auth.forgot_password"),
            )
        return
    token = make_token(RESET, user.id, _reset_state(user))
    queue_email(
        session,
        to=user.email,
        subject="Reset your password",
        template="reset_password",
        user_id=user.id,
        name=user.name,
        reset_url=external_url("auth.reset_password", token=token),
    )


def user_for_reset_token(session: Session, token: str) -> User:
    data = read_token(RESET, token, current_app.config["RESET_TOKEN_MAX_AGE"])
    user = session.get(User, data["u"])
    if user is None or data.get("s") != _reset_state(user) or user.status in (Status.DELETED, Status.SUSPENDED):
        raise InvalidToken("This link has already been used or is no longer valid. Ask for a new one.")
    return user


def _set_password(session: Session, user: User, new_password: str) -> None:
    check_password_policy(new_password, user.email)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.rotate_session_token()
    user.failed_login_count = 0
    user.locked_until = None
    queue_email(
        session,
        to=user.email,
        subject="Your password was changed",
        template="password_changed",
        user_id=user.id,
        name=user.name,
        reset_url=external_url("auth.forgot_password"),
    )


def reset_password(session: Session, token: str, new_password: str) -> User:
    user = user_for_reset_token(session, token)
    _set_password(session, user, new_password)
    audit.record(session, "auth.password_reset", user.id, user)
    if user.status == Status.UNVERIFIED:
        # Opening a link sent to the address proves it, as a verification link would.
        _address_verified(session, user)
    return user


class CurrentPasswordWrong(DomainError):
    """The current password did not match; the failure counts toward the account's lock."""

    keeps_writes = True


def change_password(session: Session, user: User, current_password: str, new_password: str) -> None:
    """Set a new password; the current one is checked like a sign-in: wrong guesses count toward the
    lock (a hijacked session cannot guess it without limit) and a locked account takes no guesses."""
    now = utcnow()
    if _is_locked(user, now):
        verify_password(None, current_password)
        raise CurrentPasswordWrong(
            "Too many wrong passwords: your account is locked for a while. Try again later, or reset your password."
        )
    if not verify_password(user.password_hash, current_password):
        _count_failure(session, user, now)
        audit.record(session, "auth.password_check_failed", user.id, user)
        raise CurrentPasswordWrong("Your current password is not right.")
    if current_password == new_password:
        raise DomainError("Choose a password different from the current one.")
    _set_password(session, user, new_password)
    audit.record(session, "auth.password_change", user.id, user)


def end_all_sessions(session: Session, user: User) -> None:
    """Sign the user out everywhere (signing out does this): every session and remember cookie they hold ends."""
    user.rotate_session_token()
    audit.record(session, "auth.sign_out", user.id, user)


# Who waits for an admin's decision (the registrations queue counts the same people the list shows).
AWAITING_APPROVAL = (User.status == Status.PENDING, User.role == Role.ADVOCATE)


def waiting_for_approval(session: Session, page: int = 1, per_page: int | None = None) -> paging.Page:
    """A page of the applications waiting for an admin's decision, oldest first (the order they are decided in)."""
    q = select(User).where(*AWAITING_APPROVAL).order_by(User.created_at, User.id)
    return paging.paginate(session, q, page, per_page or paging.PER_PAGE)


def count_by_status(session: Session, role: Role | None = Role.ADVOCATE) -> dict[str, int]:
    """How many accounts of ``role`` (advocates by default, as the advocate list counts them) are in each
    status; ``role=None``: every account."""
    q = select(User.status, func.count()).group_by(User.status)
    if role is not None:
        q = q.where(User.role == role)
    return {s.value: n for s, n in session.execute(q).all()}


def find_user(session: Session, email: str) -> User:
    user = get_by_email(session, email)
    if user is None:
        raise NotFound(f"No account with {normalize_email(email)}.")
    return user
