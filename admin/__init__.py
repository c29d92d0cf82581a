"""The admin area: its own blueprint and layout; it calls portal's services."""

from admin import (  # noqa: F401  (add their pages to the blueprint)
    advocates,
    exports,
    health,
    imports,
    lists,
    navigation,
    nominations,
    opportunities,
    recognition,
    reports,
    settings,
)
from admin.views import bp

__all__ = ["bp"]
