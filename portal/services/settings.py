"""Program settings: the one place they are read and written.

Each setting has a key, a label, help text, a kind (a count, days, points, or on/off), bounds and a
default: a constant, or an app config key (``PROFILE_STALE_DAYS``, ``AUTO_APPROVE_ADVOCATES``,
``POINTS_PROFILE_COMPLETE``, ``POINTS_REFERRAL``) so that a deployment's configuration still counts
until an admin saves a value. Saved values are ``ProgramSetting`` rows (integers; on/off is 1/0).

Reading is cheap: every row of the (tiny) table is read once per database transaction and kept in the
session (``session.info``) until that transaction ends, so a page that asks for the stale days once per
row still makes one query. Rows are written only by ``save`` (which updates that copy too).

Who reads through here: ``fatigue.policy`` (the fatigue keys), ``queues.service_level_days``,
``profiles.stale_days``, the auto-approval after an address is verified (``accounts``), and the points
for a completed profile (``profiles``) and for a referral (``referrals``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from portal.models import ProgramSetting
from portal.services import audit
from portal.services.errors import DomainError

COUNT, DAYS, POINTS, BOOL = "count", "days", "points", "bool"


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    help: str
    kind: str
    low: int
    high: int
    group: str
    default: int | None = None  # a constant default ...
    config_key: str | None = None  # ... or the app config's value

    def default_value(self) -> int | bool:
        if self.config_key is not None:
            value = current_app.config.get(self.config_key)
            return bool(value) if self.kind == BOOL else int(value)
        return bool(self.default) if self.kind == BOOL else int(self.default)

    def check(self, value: object) -> int | bool:
        """The value in its type, or a DomainError saying what is allowed."""
        if self.kind == BOOL:
            if not isinstance(value, bool) and value not in (0, 1):
                raise DomainError(f"{self.label}: choose on or off.")
            return bool(value)
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise DomainError(f"{self.label} must be a whole number between {self.low} and {self.high}.")
        return value


FATIGUE = "Fatigue policy"
QUEUES = "Queues"
PROFILES = "Profiles and registration"
POINTS_GROUP = "Points"
SIGN_IN = "Sign-in"
REFERENCES = "Reference requests"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "max_engagements_90d",
        "Most engagements per advocate in a rolling 90 days",
        "Requests and approvals that would go over this are refused unless an admin approves with an override reason.",
        COUNT,
        1,
        365,
        FATIGUE,
        default=4,
    ),
    Setting(
        "reference_call_gap_days",
        "Fewest days between two reference calls for one advocate",
        "0: no gap. Counted both before and after the call's day.",
        DAYS,
        0,
        365,
        FATIGUE,
        default=30,
    ),
    Setting(
        "service_level_days",
        "Service level (days)",
        "A registration, request, order or nomination waiting longer than this is marked overdue on the home page.",
        DAYS,
        1,
        90,
        QUEUES,
        default=3,
    ),
    Setting(
        "profile_stale_days",
        "Days before a profile counts as stale",
        "Days since an advocate last confirmed their profile (never confirmed: since approval) after which it is "
        "stale: the banner, the reminder emails, the freshness facet and the stale-profiles queue.",
        DAYS,
        1,
        3650,
        PROFILES,
        config_key="PROFILE_STALE_DAYS",
    ),
    Setting(
        "auto_approve_advocates",
        "Approve new advocates automatically",
        "On: an advocate who verifies their email address is approved at once. Off: they wait for an admin.",
        BOOL,
        0,
        1,
        PROFILES,
        config_key="AUTO_APPROVE_ADVOCATES",
    ),
    Setting(
        "points_profile_complete",
        "Points for completing the profile",
        "Given once per advocate; 0 gives none. Changing it does not change points already given.",
        POINTS,
        0,
        100_000,
        POINTS_GROUP,
        config_key="POINTS_PROFILE_COMPLETE",
    ),
    Setting(
        "points_referral",
        "Points for a referral",
        "Given to the advocate who referred a colleague, when the colleague is approved; 0 gives none.",
        POINTS,
        0,
        100_000,
        POINTS_GROUP,
        config_key="POINTS_REFERRAL",
    ),
    Setting(
        "sso_required_for_staff",
        "Staff and admins sign in only with single sign-on",
        "On: their password sign-in is refused and points them to the provider's button. Needs a sign-in "
        "provider configured for staff (OIDC_PROVIDERS with staff_domains or staff_groups).",
        BOOL,
        0,
        1,
        SIGN_IN,
        default=0,
    ),
    Setting(
        "nominations_invite_at_once",
        "Send nominees their invitation without review",
        "On: a staff member's nomination sends the customer their invitation at once. Off: an admin reviews "
        "each nomination first (Approvals, Nominations).",
        BOOL,
        0,
        1,
        QUEUES,
        default=0,
    ),
    Setting(
        "nominees_approved_at_once",
        "Approve nominees at once",
        "On: a nominated customer who signs up from their invitation is approved at once (staff vouched for "
        "them). Off: their account waits for an admin's approval like a registration.",
        BOOL,
        0,
        1,
        PROFILES,
        default=1,
    ),
    Setting(
        "self_service_requests",
        "Staff ask advocates for references themselves",
        "On: a staff member may ask the advocates matching their reference request directly. Off: an admin "
        "shortlists and asks for them.",
        BOOL,
        0,
        1,
        REFERENCES,
        default=0,
    ),
)
BY_KEY = {s.key: s for s in SETTINGS}
# Checks a new value must pass beyond its bounds, registered by the module that knows the rule
# (sso: single sign-on can be required only when a provider can sign staff in). Raise a DomainError.
GUARDS: dict[str, Callable[[int | bool], None]] = {}
_CACHE = "program_settings"


def _saved(session: Session) -> dict[str, int]:
    """The saved rows, read once per transaction (kept in ``session.info`` with the transaction)."""
    if isinstance(session, scoped_session):  # db.session: the current one
        session = session()
    cached = session.info.get(_CACHE)
    tx = session.get_transaction()
    if cached is not None and tx is not None and cached[0] is tx:
        return cached[1]
    rows = dict(session.execute(select(ProgramSetting.key, ProgramSetting.value)).all())
    session.info[_CACHE] = (session.get_transaction(), rows)
    return rows


def get(session: Session, key: str) -> int | bool:
    setting = BY_KEY[key]
    saved = _saved(session).get(key)
    if saved is None:
        return setting.default_value()
    return bool(saved) if setting.kind == BOOL else int(saved)


def values(session: Session) -> dict[str, int | bool]:
    return {s.key: get(session, s.key) for s in SETTINGS}


def save(session: Session, changes: dict, actor_id: int | None) -> dict[str, tuple]:
    """Check and write the given settings (any subset of the keys); one audit entry ("settings.update")
    with ``before`` and ``after`` of those that changed. Returns {key: (before, after)} of what changed
    (empty, and nothing written, when nothing did)."""
    checked = {}
    for key, value in changes.items():
        if key not in BY_KEY:
            raise DomainError(f"There is no setting called {key}.")
        checked[key] = BY_KEY[key].check(value)
    current = values(session)
    changed = {key: (current[key], value) for key, value in checked.items() if current[key] != value}
    if not changed:
        return {}
    for key, (_, after) in changed.items():
        if key in GUARDS:
            GUARDS[key](after)
    for key, (_, after) in changed.items():
        row = session.get(ProgramSetting, key)
        if row is None:
            session.add(ProgramSetting(key=key, value=int(after), updated_by_id=actor_id))
        else:
            row.value, row.updated_by_id = int(after), actor_id
    audit.record(
        session,
        "settings.update",
        actor_id,
        None,
        before={k: b for k, (b, _) in changed.items()},
        after={k: a for k, (_, a) in changed.items()},
    )
    session.flush()
    _saved(session).update({key: int(after) for key, (_, after) in changed.items()})
    return changed


def describe(setting: Setting, value: int | bool) -> str:
    """A value as the confirmation message says it."""
    if setting.kind == BOOL:
        return "on" if value else "off"
    unit = {DAYS: "day", POINTS: "point"}.get(setting.kind)
    return f"{value} {unit}{'s' if value != 1 else ''}" if unit else str(value)
