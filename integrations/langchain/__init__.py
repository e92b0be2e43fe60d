"""LangChain adapters over jinarag's embedder, reranker and hybrid index.

- `JinaEmbeddings`: a LangChain `Embeddings` (documents and queries keep their own sides),
  with late chunking (`embed_late_chunks`, `late_chunk_documents`).
- `JinaReranker`: a `BaseDocumentCompressor` and a `BaseCrossEncoder`, so it works in
  `ContextualCompressionRetriever` and in `CrossEncoderReranker`.
- `JinaHybridRetriever`: a `BaseRetriever` over a `jinarag.HybridIndex`.

Example:
    >>> from jinarag.langchain import JinaEmbeddings, JinaReranker
    >>> embeddings = JinaEmbeddings("small")
    >>> reranker = JinaReranker("turbo", top_n=3)
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "jinarag.langchain needs langchain-core, which is not installed. "
        "Install it with: pip install 'jinarag[langchain]'"
    ) from exc

from jinarag.langchain.embeddings import JinaEmbeddings
from jinarag.langchain.reranker import JinaReranker
from jinarag.langchain.retriever import JinaHybridRetriever

__all__ = ["JinaEmbeddings", "JinaHybridRetriever", "JinaReranker"]
