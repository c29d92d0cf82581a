"""The index schemas.

Advocates: one analysed ``content`` field carries all free text (one posting list per word keeps
multi-word queries cheap) with positions for phrases; ``name``, ``company`` and ``title`` allow
Whoosh's fielded syntax (``company:acme``). Facet values and sort keys are packed into one column
(``facets``) and counted with bitsets in memory (search/facets.py). Separate keyword fields per
facet made every build much slower, so they were dropped: facet names
used as fields (``industry:healthcare``) search the content, which holds those values. Nothing long
is stored: snippets are highlighted from the database rows of the page being shown. ``digest`` (stored)
is a hash of the text fields as written, so ``flask search check`` can compare content with the
database without storing the text (search.documents.digest).
"""

from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, STORED, TEXT, Schema

ADVOCATES, OPPORTUNITIES = "advocates", "opportunities"  # the two indexes (and search_pending.doc_type)
KEYS = {ADVOCATES: "uid", OPPORTUNITIES: "oid"}  # each index's unique key field

# Order of the values packed in the ``facets`` column (see search.documents.advocate_docs).
PACKED = ["industry", "region", "country", "size", "product", "activity", "fatigue", "confirmed_day", "engaged_day"]


def advocate_schema() -> Schema:
    return Schema(
        uid=ID(unique=True, stored=True, sortable=True),
        content=TEXT(analyzer=StemmingAnalyzer(), phrase=True),
        name=TEXT(phrase=False),
        company=TEXT(phrase=False),
        title=TEXT(phrase=False),
        facets=ID(sortable=True),
        digest=STORED,
    )


def opportunity_schema() -> Schema:
    stem = StemmingAnalyzer()
    return Schema(
        oid=ID(unique=True, stored=True),
        content=TEXT(analyzer=stem, phrase=True),
        title=TEXT(analyzer=stem, field_boost=2.0),
        type=ID(stored=False),
        status=ID,
        digest=STORED,
    )


SCHEMAS = {ADVOCATES: advocate_schema, OPPORTUNITIES: opportunity_schema}
