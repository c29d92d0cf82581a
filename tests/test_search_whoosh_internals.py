"""The Whoosh internals the search reads (search/whoosh_internals.py): the version they were checked
against, and the start-up check that stops the app, naming the internal, when one is missing."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import tempfile
import threading

import pytest
from whoosh.codec import whoosh3
from whoosh.columns import TranslatingColumnReader
from whoosh.index import FileIndex

from portal import create_app
from search import whoosh_internals
from search.whoosh_internals import WhooshInternalsChanged

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_internals_were_checked_against_the_installed_whoosh():
    """Upgrading whoosh-reloaded means reading search/whoosh_internals.py against the new version
    (and changing CHECKED_AGAINST): this test fails until someone has."""
    assert importlib.metadata.version("whoosh-reloaded") == whoosh_internals.CHECKED_AGAINST == "2.7.5"
    assert '"whoosh-reloaded==2.7.5"' in (ROOT / "pyproject.toml").read_text()


def test_the_internals_answer_as_the_public_api_does():
    whoosh_internals.verify()  # raises WhooshInternalsChanged otherwise


def test_checks_run_at_once_do_not_delete_each_others_files(tmp_path, monkeypatch):
    """gunicorn starts its workers together, each app runs the check: with a shared temporary folder
    (RamStorage's <temp>/MAIN.tmp) one check removed another's buffers and that worker failed to start."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    failures = []

    def check():
        for _ in range(5):
            try:
                whoosh_internals.verify()
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert list(tmp_path.iterdir()) == []  # each check removed its own folder, and only that


@pytest.mark.parametrize(
    "owner, name, shown",
    [
        (whoosh3.W3LeafMatcher, "_read_ids", "W3LeafMatcher._read_ids"),
        (whoosh3.W3LeafMatcher, "_next_block", "W3LeafMatcher._next_block"),
        (FileIndex, "_segments", "FileIndex._segments"),
        (TranslatingColumnReader, "raw_column", "TranslatingColumnReader.raw_column"),
    ],
)
def test_a_missing_internal_stops_the_app_at_start_naming_it(app_config, monkeypatch, owner, name, shown):
    monkeypatch.delattr(owner, name)
    monkeypatch.setattr(whoosh_internals, "_verified", False)  # this process already checked them
    with pytest.raises(WhooshInternalsChanged) as caught:
        create_app(app_config)
    message = str(caught.value)
    assert f"Whoosh internal {shown} is missing" in message
    assert "checked against whoosh-reloaded 2.7.5" in message


def test_an_internal_that_answers_differently_stops_the_app(app_config, monkeypatch):
    monkeypatch.setattr(whoosh_internals, "LENGTHS", [0] * 256)  # every field length read as 0
    monkeypatch.setattr(whoosh_internals, "_verified", False)
    with pytest.raises(WhooshInternalsChanged, match="whoosh_internals.field_lengths no longer answers"):
        create_app(app_config)


def test_no_module_of_search_but_whoosh_internals_reads_a_private_whoosh_name():
    """A private name of Whoosh's (an attribute or import starting with an underscore, on anything but
    our own modules and objects) appears only in search/whoosh_internals.py."""
    own = {"_get_current_object"}  # Flask's, not Whoosh's
    found = []
    for path in sorted((ROOT / "search").glob("*.py")):
        if path.name == "whoosh_internals.py":
            continue
        text = path.read_text()
        for match in re.finditer(r"\b(\w+)\.(_[a-z]\w*)\b", text):
            obj, attr = match.groups()
            if attr in own or obj in {"self", "querying", "indexing", "documents", "facets", "ranking", "rebuild"}:
                continue
            found.append(f"{path.name}: {match.group(0)}")
        found += [f"{path.name}: {m}" for m in re.findall(r"from whoosh[\w.]* import [^\n]*\b_\w+", text)]
        found += [f"{path.name}: {m}" for m in re.findall(r"\bhas_column\s*=", text)]
        found += [f"{path.name}: {m}" for m in re.findall(r"(?:getattr|hasattr)\([^)]*[\"']_\w+", text)]
    assert found == []
