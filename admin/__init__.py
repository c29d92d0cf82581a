"""The admin area: its own blueprint and layout; it calls portal's services."""

from admin import advocates, exports, health, imports, lists, navigation, opportunities, recognition, reports, settings  # noqa: F401  (add their pages to the blueprint)
from admin.views import bp

__all__ = ["bp"]
