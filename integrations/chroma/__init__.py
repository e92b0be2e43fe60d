"""jinarag.chroma (in progress)."""
