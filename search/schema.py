"""The index schemas.

Advocates: one analysed ``content`` field carries all free text (one posting list per word keeps
multi-word queries cheap); short fields allow Whoosh's fielded syntax (``company:acme``,
``industry:healthcare``); facet values are stored as columns and counted with bitsets in memory
(see search/facets.py). Nothing long is stored: snippets are highlighted from the database rows
of the page being shown.
"""
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, KEYWORD, NUMERIC, TEXT, Schema


def advocate_schema() -> Schema:
    stem = StemmingAnalyzer()
    return Schema(
        uid=ID(unique=True, stored=True, sortable=True),
        content=TEXT(analyzer=stem, phrase=True),
        name=TEXT(phrase=False),
        company=TEXT(phrase=False),
        title=TEXT(phrase=False),
        industry=KEYWORD(commas=True, lowercase=True, scorable=False),
        region=KEYWORD(commas=True, lowercase=True, scorable=False),
        country=KEYWORD(commas=True, lowercase=True, scorable=False),
        size=KEYWORD(commas=True, lowercase=True, scorable=False),
        product=KEYWORD(commas=True, lowercase=True, scorable=False),
        topic=KEYWORD(commas=True, lowercase=True, scorable=False),
        activity=KEYWORD(commas=True, lowercase=True, scorable=False),
        # facet and sort columns (values are ids / keys, '|' joins multi-valued ones)
        f_industry=ID(sortable=True),
        f_region=ID(sortable=True),
        f_country=ID(sortable=True),
        f_size=ID(sortable=True),
        f_products=ID(sortable=True),
        f_activities=ID(sortable=True),
        f_fatigue=ID(sortable=True),
        status=ID(sortable=True),
        confirmed_day=NUMERIC(int, bits=32, sortable=True),
        engaged_day=NUMERIC(int, bits=32, sortable=True),
    )


def opportunity_schema() -> Schema:
    stem = StemmingAnalyzer()
    return Schema(
        oid=ID(unique=True, stored=True),
        content=TEXT(analyzer=stem, phrase=True),
        title=TEXT(analyzer=stem, field_boost=2.0),
        type=ID(stored=False),
        status=ID,
    )
