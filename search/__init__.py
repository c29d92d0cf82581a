"""The search index (Whoosh), behind a small seam.

Callers (views, services, the CLI, the hooks that write queued changes after a commit) use
``search.backend()``: the app's SearchBackend (search/seam.py), chosen by ``search.seam.init_app``,
which the factory calls. Behind it: ``documents`` (what feeds each document, declared once, and the
builders), ``indexing`` (the index on disk, writers, and the queue that follows the database),
``querying``, ``facets`` and ``ranking`` (search), ``rebuild`` (rebuild, optimize, check),
``fallback`` (a plain database search when the index cannot answer) and ``whoosh_internals`` (every
private Whoosh internal the search reads, checked at start). It knows ``portal.models``; models never
import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:  # for the annotation only: importing search.seam here would load the whole index
    from search.seam import SearchBackend


def backend() -> SearchBackend:
    """The app's search backend (search.seam.init_app chose it)."""
    return current_app.extensions["search"]
