"""Retrieval quality on judged data: the BEIR reader, metrics, the eval runner and tuning."""
