"""URL converters."""

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER: a larger id in a URL cannot exist, and must give 404, not 500


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that only matches ids a database row can have."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
