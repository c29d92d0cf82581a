"""The Whoosh search index (filled by the search issue).

Modules: ``schema`` (fields), ``indexing`` (documents from models, pending-change queue, writers),
``querying`` (parsing, facets, fallback), ``rebuild`` (build beside and swap). It knows
``portal.models``; models never import it.
"""
