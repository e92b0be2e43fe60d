"""jinarag.langchain (in progress)."""
