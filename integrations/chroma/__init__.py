"""Chroma integration: an embedding function that Chroma stores and rebuilds by itself.

Importing this module registers ``JinaEmbeddingFunction`` with Chroma under the name
``"jinarag"``; import it before reopening a collection that was created with it.

Example:
    >>> import chromadb
    >>> import jinarag.chroma  # registers the embedding function
    >>> docs = chromadb.PersistentClient("./chroma").get_collection("docs")
    >>> docs.query(query_texts=["what increases lift?"], n_results=1)["ids"]
    [['a']]
"""

from __future__ import annotations

try:
    import chromadb  # noqa: F401
except ImportError as exc:  # pragma: no cover - chromadb is a core dependency
    raise ImportError(
        "jinarag.chroma needs chromadb, which is missing: pip install chromadb"
    ) from exc

from jinarag.chroma.embedding_function import JinaEmbeddingFunction

__all__ = ["JinaEmbeddingFunction"]
