"""The free-text box of every search: staff's advocate search, advocates' opportunity search and the
box on their feed. A GET form (no CSRF token: it changes nothing).

Its length is bounded well below the request line gunicorn accepts (``--limit-request-line``, 4,094
bytes by default): a longer line gets gunicorn's own bare 400 or 414, without the app's security
headers or pages. 200 characters percent-encoded are at most 2,400 bytes (4-byte UTF-8 characters,
3 bytes each as %XX), which leaves room for the path and the filters."""

from wtforms import SearchField
from wtforms.validators import Length

from portal.forms import BaseForm

MAX_QUERY_LENGTH = 200


class SearchQueryForm(BaseForm):
    class Meta:
        csrf = False

    # Length renders as maxlength="200" on the input too, so a browser never sends a longer query.
    q = SearchField(
        "Search",
        validators=[
            Length(
                max=MAX_QUERY_LENGTH,
                message=f"Your search is too long: use {MAX_QUERY_LENGTH} characters at most.",
            )
        ],
    )
