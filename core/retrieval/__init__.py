"""The retrieval layer: the hybrid index (Chroma + BM25), fusion and ingestion.

Importing this package is light; :mod:`jinarag.retrieval.index` (which needs chromadb) is only
imported when asked for.
"""
