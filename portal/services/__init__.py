"""Domain services: plain functions taking the session and values; they flush, never commit."""
