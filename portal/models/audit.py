"""The audit log: who did what to which object, when and from where; append-only.

Append-only in the database (migration 0010): triggers refuse DELETE, and an UPDATE that changes who,
what, which object or when. The one change allowed is the erasure's redaction of an erased person's
data (portal.services.erasure.scrub_audit_log): the IP address may be cleared and the details
rewritten without their name, email and free text. This module's ORM guard says the same early."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, event, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.models.base import Base, utcnow

# What an event is: never changed once written (the database refuses it too).
FIXED = ("id", "actor_id", "action", "target_type", "target_id", "created_at")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: the database may not rewrite who acted (SET NULL would); accounts are erased, not deleted.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None]
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)


class AuditLogIsAppendOnly(RuntimeError):
    """Code tried to delete an audit event or change what it records."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session, flush_context, instances) -> None:
    """The ORM half of the append-only rule (the triggers of migration 0010 are the other half)."""
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise AuditLogIsAppendOnly(f"Audit event {obj.id} cannot be deleted.")
    for obj in session.dirty:
        if not isinstance(obj, AuditEvent):
            continue
        state = inspect(obj)
        changed = [name for name in FIXED if state.attrs[name].history.has_changes()]
        ip = state.attrs["ip_address"].history
        if changed or (ip.has_changes() and obj.ip_address is not None):
            raise AuditLogIsAppendOnly(
                f"Audit event {obj.id}: {', '.join(changed) or 'ip_address'} cannot be changed "
                "(only the erasure's redaction may clear the IP address and rewrite the details)."
            )
