"""The admin area: its own blueprint and layout; it calls portal's services."""

from admin import advocates, exports, health, opportunities, recognition, reports  # noqa: F401  (add their pages to the blueprint)
from admin.views import bp

__all__ = ["bp"]
