"""The admin area: its own blueprint and layout; it calls portal's services."""
from admin import recognition  # noqa: F401  (adds the recognition pages to the blueprint)
from admin.views import bp

__all__ = ["bp"]
