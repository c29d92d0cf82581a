"""indexing: filled by the search issue."""
