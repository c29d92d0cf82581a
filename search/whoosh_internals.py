"""Every use of Whoosh's private internals, in one place.

The search reads a few things Whoosh keeps private: where its public API costs a Python call per
document or per posting (field lengths, column values, postings and positions a block at a time), or
offers no way at all (keeping a searcher's column files open while another process merges them away,
listing the segments of a commit). Each function below reads one such thing and says what it reads
and why. Nothing else in ``search/`` touches a name of Whoosh's that starts with an underscore.

They were read against whoosh-reloaded CHECKED_AGAINST. ``verify()`` runs every one of them on a small
index in memory and compares its answers with the public API's; the app factory calls it (once per
process, through ``verify_once``), so a Whoosh upgrade that moves or changes one of them stops the app
at start with a message naming it, instead of making search silently slow or wrong.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import types

from whoosh.codec import whoosh3
from whoosh.columns import EmptyColumnReader, VarBytesColumn
from whoosh.fields import ID, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.matching import FilterMatcher, ListMatcher
from whoosh.reading import SegmentReader
from whoosh.util.numeric import byte_to_length

CHECKED_AGAINST = "2.7.5"  # the whoosh-reloaded version these functions were read against (tests pin it)
LENGTHS = [byte_to_length(b) if b else 0 for b in range(256)]  # Whoosh's one-byte field length encoding


class WhooshInternalsChanged(RuntimeError):
    """A Whoosh internal the search relies on is missing or behaves differently (a Whoosh upgrade)."""


def installed_version() -> str:
    return importlib.metadata.version("whoosh-reloaded")


def _changed(what: str) -> WhooshInternalsChanged:
    return WhooshInternalsChanged(
        f"{what}. search/whoosh_internals.py was checked against whoosh-reloaded {CHECKED_AGAINST}; "
        f"{installed_version()} is installed. Install whoosh-reloaded=={CHECKED_AGAINST}, or read the "
        "changed internal in the new version and update search/whoosh_internals.py."
    )


# --- the index ------------------------------------------------------------------------------------------------


def segments(ix) -> list:
    """The segments of the index's latest commit, read from its table of contents:
    ``FileIndex._segments()``. The public route (``ix.reader().leaf_readers()``) opens every segment's
    files just to ask each one its size."""
    return ix._segments()


def pin_column_files(leaf: SegmentReader, listing: list[str]) -> frozenset[str]:
    """Open every column file of the segment of ``leaf`` now (``listing``: the index directory's file
    names, ``<segment id>.<column>.col``), and make the segment answer ``has_column`` from what was
    opened; returns the names of the columns opened. Why: see search.indexing.open_searcher.

    Reads ``SegmentReader._perdoc`` (the segment's per-document reader), its ``_colfiles`` (open column
    files by name) and ``_get_column_file`` (opens one), and replaces that reader's ``has_column``,
    which otherwise asks the directory: once another process's merge has deleted the files, it says
    "no column" and Whoosh reads default values instead of the open file. Whoosh has no public way to
    open a segment's files ahead of their first use."""
    perdoc = leaf._perdoc
    prefix, suffix = f"{leaf.segment().segment_id()}.", whoosh3.W3Codec.COLUMN_EXT
    for name in listing:
        if name.startswith(prefix) and name.endswith(suffix):
            column = name[len(prefix) : -len(suffix)]
            if column not in perdoc._colfiles:
                perdoc._colfiles[column] = perdoc._get_column_file(column)
    pinned = frozenset(perdoc._colfiles)
    perdoc.has_column = pinned.__contains__
    return pinned


# --- per-document values --------------------------------------------------------------------------------------


def field_lengths(leaf: SegmentReader, fieldname: str, size: int) -> list[int]:
    """Every document's length in ``fieldname`` (the segment has ``size`` documents), from the codec's
    length column (one byte per document) read in one go.

    Reads ``W3PerDocReader._cached_reader`` with ``whoosh3._lenfield`` and ``whoosh3.LENGTHS_COLUMN``
    (the column's name and type), and the column reader's ``_fixedlen``, ``_typecode``, ``_count``,
    ``_dbfile`` and ``_basepos`` (its bytes in the file). The public ``doc_field_length`` is a Python
    call per document."""
    col = leaf._perdoc._cached_reader(whoosh3._lenfield(fieldname), whoosh3.LENGTHS_COLUMN)
    if col is None:  # no document of the segment has the field
        return [0] * size
    if col._fixedlen != 1 or col._typecode != "B":
        raise _changed(f"The length column of {fieldname!r} is no longer one byte per document")
    count = min(col._count, size)
    data = bytes(col._dbfile.get(col._basepos, count)) if count else b""
    return [LENGTHS[b] for b in data] + [0] * (size - count)


def column_values(leaf: SegmentReader, fieldname: str) -> list:
    """Every document's value of a sortable ID field's column (``uid``, ``facets``: a VarBytesColumn),
    read in one go: the column's bytes and per-document lengths, cut and translated here.

    Reads the translating reader's ``_translate`` (the field's ``from_column_value``) and the
    VarBytesColumn reader's ``_lengths``, ``_dbfile`` and ``_basepos``. Whoosh's own iterator seeks and
    reads once per document. A segment without the column gives the field's default for every document
    (the public iterator, which costs nothing there)."""
    col = leaf.column_reader(fieldname)
    raw = col.raw_column()
    if isinstance(raw, EmptyColumnReader):
        return list(col)
    if type(raw) is not VarBytesColumn.Reader:
        raise _changed(f"The {fieldname!r} column is read by {type(raw).__qualname__}, not VarBytesColumn.Reader")
    lengths = raw._lengths
    data = bytes(raw._dbfile.get(raw._basepos, sum(lengths)))
    translate = col._translate
    out, pos = [], 0
    for n in lengths:
        out.append(translate(data[pos : pos + n]))
        pos += n
    return out


# --- postings -----------------------------------------------------------------------------------------------


def _blocks(m) -> bool:
    """Is ``m`` read a block at a time (W3LeafMatcher), or through the public matcher API? Postings
    inlined in the term's entry (ListMatcher: a single document) and those of a segment with deletions
    (FilterMatcher, which drops the deleted documents) are read one posting at a time."""
    if type(m) is whoosh3.W3LeafMatcher:
        return True
    if isinstance(m, (ListMatcher, FilterMatcher)):
        return False
    raise _changed(f"Postings are read by {type(m).__qualname__}, not W3LeafMatcher, ListMatcher or FilterMatcher")


def read_postings(leaf: SegmentReader, fieldname: str, text) -> tuple[list[int], list[float]]:
    """All (document, term frequency) postings of a term in a segment.

    Reads W3LeafMatcher's block methods and buffers (``_atend``, ``_read_ids``, ``_read_weights``,
    ``_ids``, ``_weights``, ``_next_block``): a block of ids and weights decoded at once. The public
    matcher API (``id()``, ``weight()``, ``next()``) is a Python call per posting."""
    m = leaf.postings(fieldname, text)
    ids: list[int] = []
    weights: list[float] = []
    if _blocks(m):
        while not m._atend:
            m._read_ids()
            m._read_weights()
            ids.extend(m._ids)
            weights.extend(m._weights)
            m._next_block()
    else:
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            m.next()
    return ids, weights


def term_positions(leaf: SegmentReader, fieldname: str, text, wanted: set[int], docs: list[int]) -> dict[int, list]:
    """The positions of a term in each document of ``wanted`` that holds it (``docs``: the same
    documents, ascending, for the public route), decoded only for those documents.

    Reads W3LeafMatcher's blocks (``_atend``, ``_read_ids``, ``_read_values``, ``_ids``, ``_values``,
    ``_next_block``): a block's ids and encoded values at once, decoding the wanted ones. The public
    route skips to each document and decodes its value through the matcher, a few calls per document."""
    decode = leaf.schema[fieldname].format.decode_positions
    m = leaf.postings(fieldname, text)
    positions = {}
    if _blocks(m):
        while not m._atend:
            m._read_ids()
            m._read_values()
            for d, v in zip(m._ids, m._values):
                if d in wanted:
                    positions[d] = decode(v)
            m._next_block()
        return positions
    for d in docs:
        if not m.is_active():
            break
        if m.id() < d:
            m.skip_to(d)
            if not m.is_active():
                break
        if m.id() == d:
            positions[d] = m.value_as("positions")
    return positions


# --- the start-up check ---------------------------------------------------------------------------------------

_verified = False


def verify() -> None:
    """Run every function above on a three-document index in a private temporary folder and compare each
    answer with the public API's; raise WhooshInternalsChanged naming the internal that is missing or the
    function whose answer changed.

    Not a RamStorage: its writers keep their column buffers in ``<system temp>/MAIN.tmp``, one folder
    shared by every process, which a writer removes when it is done; gunicorn workers starting together
    then deleted each other's buffers and one failed to start. A folder of its own, as the index on disk."""
    with tempfile.TemporaryDirectory(prefix="portal-whoosh-check-") as folder:
        _verify_in(FileStorage(folder))


def _verify_in(storage) -> None:
    stage = "writing a small index"
    try:
        ix = storage.create_index(Schema(key=ID(stored=True, sortable=True), text=TEXT(phrase=True)))
        w = ix.writer(compound=False)  # as the search writes its segments
        for key, text in (("a", "alpha beta gamma"), ("b", "beta alpha"), ("c", "alpha beta alpha delta")):
            w.add_document(key=key, text=text)
        w.commit(merge=False)
        with ix.reader() as leaf:
            docs = list(range(leaf.doc_count_all()))

            def public(word):  # (ids, weights, positions by document) through the public matcher API
                m = leaf.postings("text", word)
                ids, weights, positions = [], [], {}
                while m.is_active():
                    ids.append(m.id())
                    weights.append(m.weight())
                    positions[m.id()] = m.value_as("positions")
                    m.next()
                return ids, weights, positions

            checks = {
                "segments": lambda: [s.segment_id() for s in segments(ix)] == [leaf.segment().segment_id()],
                "pin_column_files": lambda: (
                    {"key", "_stored"} <= pin_column_files(leaf, leaf.storage().list()) and leaf.has_column("key")
                ),
                "field_lengths": lambda: (
                    field_lengths(leaf, "text", len(docs)) == [leaf.doc_field_length(d, "text") for d in docs]
                ),
                "column_values": lambda: column_values(leaf, "key") == list(leaf.column_reader("key")),
                "read_postings": lambda: (
                    _blocks(leaf.postings("text", "alpha"))  # a term in several documents: read in blocks
                    and read_postings(leaf, "text", "alpha") == public("alpha")[:2]
                    and read_postings(leaf, "text", "gamma") == public("gamma")[:2]  # in one document: inlined
                ),
                "term_positions": lambda: term_positions(leaf, "text", "alpha", set(docs), docs) == public("alpha")[2],
            }
            for stage, check in checks.items():  # ``stage`` names the check in the message below
                if not check():
                    raise _changed(f"search.whoosh_internals.{stage} no longer answers as Whoosh's public API does")
    except (AttributeError, NameError) as exc:
        raise _changed(f"Whoosh internal {_name(exc)} is missing (met in {stage})") from exc


def _name(exc: AttributeError | NameError) -> str:
    obj = getattr(exc, "obj", None)  # AttributeError only; a NameError names a module-level name
    if obj is None:
        return exc.name
    if isinstance(obj, types.ModuleType):
        return f"{obj.__name__}.{exc.name}"
    return f"{obj.__qualname__ if isinstance(obj, type) else type(obj).__qualname__}.{exc.name}"


def verify_once() -> None:
    """verify(), once per process (the factory calls it for every app it creates)."""
    global _verified
    if not _verified:
        verify()
        _verified = True
