"""The staff workspace: the program's internal customers (sales, customer success, PR, events, analyst
relations) nominate customers and ask for references. Its own blueprint, layout and navigation; it calls
portal's services. Staff see their own nominations and requests; admins see everyone's."""

from staff import nominations, references  # noqa: F401  (add their pages to the blueprint)
from staff.navigation import PARTS
from staff.views import bp

PARTS.extend([nominations, references])

__all__ = ["bp"]
