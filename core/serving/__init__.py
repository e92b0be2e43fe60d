"""The HTTP server (``jinarag serve``): Jina API request and response shapes."""
