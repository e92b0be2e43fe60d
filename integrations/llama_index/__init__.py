"""jinarag.llama_index (in progress)."""
