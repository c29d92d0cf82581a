"""All models, one module per domain; importing this package registers every table."""
from portal.models.base import Base, utcnow
from portal.models.accounts import Consent, Role, Status, User
from portal.models.advocates import (ActivityPreference, ActivityType, AdvocateProfile, Blackout, Country, Digest,
                                    Industry, Product, Region, SizeBand, Tag, TagKind, profile_products, profile_tags)
from portal.models.audit import AuditEvent
from portal.models.indexing import SearchPending
from portal.models.opportunities import (ACTIVE_STATUSES, ENGAGED_STATUSES, DigestDelivery, Opportunity,
                                         OpportunityStatus, Participation, ParticipationStatus, ProgramSetting,
                                         SelectionMode)
from portal.models.recognition import (Badge, EntryKind, EntrySource, PointsBalance, PointsEntry, Redemption,
                                       RedemptionStatus, Reward, UserBadge)
from portal.models.mail import OutboxMessage, OutboxStatus

__all__ = [
    "ActivityPreference", "ActivityType", "AdvocateProfile", "Blackout", "Country", "Digest", "Industry", "Product",
    "Region", "SizeBand", "Tag", "TagKind", "profile_products", "profile_tags",
    "Badge", "EntryKind", "EntrySource", "PointsBalance", "PointsEntry", "Redemption", "RedemptionStatus",
    "Reward", "UserBadge", "ACTIVE_STATUSES", "ENGAGED_STATUSES", "DigestDelivery", "Opportunity",
    "OpportunityStatus", "Participation", "ParticipationStatus", "ProgramSetting", "SelectionMode",
    "SearchPending",
    "Base", "utcnow", "User", "Role", "Status", "Consent", "AuditEvent", "OutboxMessage", "OutboxStatus",
]
