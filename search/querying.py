"""querying: filled by the search issue."""
