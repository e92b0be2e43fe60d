"""Haystack (2.x and 3.x) components over jinarag's embedder, reranker and hybrid index.

- `JinaTextEmbedder`: embeds a query string (query side).
- `JinaDocumentEmbedder`: embeds Documents (document side, or by late chunking with
  `late_chunking=True`), returning new Documents.
- `JinaRanker`: reorders Documents by a local Jina reranker's score.
- `JinaHybridRetriever`: dense + BM25 retrieval over a `jinarag.HybridIndex`.

Haystack 3.x only imports modules on its deserialization allowlist when it loads a pipeline
from YAML; allow this one with `Pipeline.loads(text, allowed_modules=["jinarag.haystack"])`
(or `HAYSTACK_DESERIALIZATION_ALLOWLIST=jinarag.haystack`). Haystack 2.x needs nothing.

Example:
    >>> from haystack import Pipeline
    >>> from jinarag.haystack import JinaRanker, JinaTextEmbedder
    >>> pipeline = Pipeline()
    >>> pipeline.add_component("embedder", JinaTextEmbedder(model="small"))
"""

from __future__ import annotations

try:
    import haystack  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "jinarag.haystack needs haystack-ai, which is not installed. "
        "Install it with: pip install 'jinarag[haystack]'"
    ) from exc

from jinarag.haystack.document_embedder import JinaDocumentEmbedder
from jinarag.haystack.ranker import JinaRanker
from jinarag.haystack.retriever import JinaHybridRetriever
from jinarag.haystack.text_embedder import JinaTextEmbedder

__all__ = ["JinaDocumentEmbedder", "JinaHybridRetriever", "JinaRanker", "JinaTextEmbedder"]
