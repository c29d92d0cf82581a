from __future__ import annotations

from flask import has_request_context, request

from portal.models import AuditEvent


def record(session, action: str, actor_id: int | None, target=None, **details) -> AuditEvent:
    """Append an audit event in the caller's transaction."""
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=getattr(target, "id", None),
        details=details,
        ip_address=request.remote_addr if has_request_context() else None,
    )
    session.add(event)
    return event
