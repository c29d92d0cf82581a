from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from portal.models import AuditEvent


def record(session: Session, action: str, actor_id: int | None, target: Any = None, **details: Any) -> AuditEvent:
    """Append an audit event in the caller's transaction."""
    if isinstance(target, LocalProxy):  # current_user passed on by a view: record the User it stands for
        target = target._get_current_object()
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
