"""The admin area: its own blueprint and layout; it calls portal's services."""
from admin.views import bp

__all__ = ["bp"]
