"""rebuild: filled by the search issue."""
