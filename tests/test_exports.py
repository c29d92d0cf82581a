"""portal.exports: RFC 4180 CSV, neutralised formulas (OWASP), streamed line by line."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from portal.exports import cell, lines


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        ("O'Brien", "O'Brien"),
        (-25, -25),  # a number the portal writes stays a number
        (None, ""),
        (True, "yes"),
        (datetime(2026, 12, 6, 9, 5, 7, tzinfo=UTC), "2026-12-06 09:05:07"),
        (date(2026, 12, 6), "2026-12-06"),
    ],
)
def test_cells(value, written):
    assert cell(value) == written


def test_the_file_is_rfc_4180_with_a_bom_and_reads_back_cell_by_cell():
    rows = [
        (1, 'She said "hi"', "a,b", "two\nlines", "=cmd|' /C calc'!A0"),
        (2, "", None, "Zoë Ünal", -5),
    ]
    out = list(lines(("id", "quote", "comma", "break", "formula"), rows))
    assert len(out) == 3  # one chunk per line: streamed, not built whole
    text = "".join(out)
    assert text.startswith("\ufeffid,quote,comma,break,formula\r\n")
    assert out[1] == '1,"She said ""hi""","a,b","two\nlines",\'=cmd|\' /C calc\'!A0\r\n'
    back = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    assert back == [
        ["id", "quote", "comma", "break", "formula"],
        ["1", 'She said "hi"', "a,b", "two\nlines", "'=cmd|' /C calc'!A0"],
        ["2", "", "", "Zoë Ünal", "-5"],
    ]


def test_lines_read_the_rows_lazily():
    seen = []

    def rows():
        for i in range(3):
            seen.append(i)
            yield (i,)

    stream = lines(("n",), rows())
    next(stream)
    assert seen == []  # the header goes out before any row is read
    next(stream)
    assert seen == [0]
