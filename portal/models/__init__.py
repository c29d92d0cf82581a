"""All models, one module per domain; importing this package registers every table."""

from portal.models.accounts import Consent, Role, Status, User
from portal.models.advocates import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Country,
    Digest,
    Industry,
    Product,
    Region,
    SizeBand,
    Tag,
    TagKind,
    profile_products,
    profile_tags,
)
from portal.models.audit import AdvocateNote, AuditEvent
from portal.models.base import Base, utcnow
from portal.models.indexing import SearchPending
from portal.models.invitations import ImportJob, ImportStatus, Invitation, SuppressedAddress
from portal.models.mail import OutboxMessage, OutboxStatus
from portal.models.opportunities import (
    ACTIVE_STATUSES,
    ENGAGED_STATUSES,
    DigestDelivery,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    ProgramSetting,
    SelectionMode,
)
from portal.models.recognition import (
    Badge,
    EntryKind,
    EntrySource,
    PointsBalance,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    UserBadge,
)
from portal.models.reporting import ActivityValue, SegmentTarget  # noqa: F401  (issue 14)
from portal.models.sso import Identity

__all__ = [
    "ActivityPreference",
    "ActivityType",
    "AdvocateProfile",
    "Blackout",
    "Country",
    "Digest",
    "Industry",
    "Product",
    "Region",
    "SizeBand",
    "Tag",
    "TagKind",
    "profile_products",
    "profile_tags",
    "Badge",
    "EntryKind",
    "EntrySource",
    "PointsBalance",
    "PointsEntry",
    "Redemption",
    "RedemptionStatus",
    "Reward",
    "UserBadge",
    "ACTIVE_STATUSES",
    "ENGAGED_STATUSES",
    "DigestDelivery",
    "Opportunity",
    "OpportunityStatus",
    "Participation",
    "ParticipationStatus",
    "ProgramSetting",
    "SelectionMode",
    "SearchPending",
    "ImportJob",
    "ImportStatus",
    "Invitation",
    "SuppressedAddress",
    "Base",
    "utcnow",
    "User",
    "Role",
    "Status",
    "Consent",
    "AuditEvent",
    "AdvocateNote",
    "Identity",
    "OutboxMessage",
    "OutboxStatus",
]
