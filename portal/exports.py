"""CSV exports: RFC 4180, safe to open in a spreadsheet, streamed.

Every export of the portal goes through ``csv_response``:
- RFC 4180: comma separated, CRLF line ends, a field quoted when it holds a comma, a quote or a line
  break, quotes doubled (the standard library's csv writer with QUOTE_MINIMAL and ``\\r\\n``).
- Formula injection (OWASP "CSV Injection"): a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return is read as a formula by Excel and LibreOffice; such a cell is prefixed with a
  single quote, which the spreadsheet shows as text. Numbers the portal writes (ints) are left alone:
  a negative points amount stays a number.
- Streamed: rows are written one by one as the caller's iterator yields them (read them with
  ``yield_per``), so memory stays flat whatever the number of rows. A UTF-8 byte order mark first, so
  Excel opens accented names correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from flask import Response, stream_with_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def cell(value: object) -> object:
    """One value as it goes into a cell: text that a spreadsheet would run as a formula is neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The CSV text, one line at a time (the header first, after the byte order mark)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")

    def line(values) -> str:
        writer.writerow([cell(v) for v in values])
        out = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return out

    yield BOM + line(header)
    for row in rows:
        yield line(row)


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Response:
    """A streamed download; ``rows`` may read the database lazily (the request's context stays open)."""
    resp = Response(stream_with_context(lines(header, rows)), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp
