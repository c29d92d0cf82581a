"""schema: filled by the search issue."""
