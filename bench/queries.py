"""20 fixed queries: free text of one and several words, phrases, words with facets, facets only."""

QUERIES = [
    # (class, text, filters)
    ("free 1 word", "security", {}),
    ("free 1 word", "kubernetes", {}),
    ("free 1 word", "clinicians", {}),
    ("free 1 word", "fraud", {}),
    ("free 2-3 words", "cloud migration", {}),
    ("free 2-3 words", "data governance compliance", {}),
    ("free 2-3 words", "reduced costs", {}),
    ("free 2-3 words", "payments reconciliation ledger", {}),
    ("phrase", '"single sign-on"', {}),
    ("phrase", '"zero trust"', {}),
    ("phrase", '"data governance"', {}),
    ("words + facets", "security", {"industry": ["1"], "region": ["3"]}),
    ("words + facets", "cloud migration", {"size": ["4"]}),
    ("words + facets", "analytics", {"product": ["2"], "activity": ["reference_call"]}),
    ("words + facets", "CISO bank", {"region": ["3"]}),
    ("facets only", "", {"industry": ["6"]}),
    ("facets only", "", {"region": ["6"], "size": ["5"]}),
    ("facets only", "", {"activity": ["speaking"], "freshness": ["fresh"]}),
    ("broad + facets", "team", {"region": ["3"], "fatigue": ["under_used"]}),
    ("broad + facets", "data", {"activity": ["review"]}),
]
