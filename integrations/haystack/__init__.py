"""jinarag.haystack (in progress)."""
