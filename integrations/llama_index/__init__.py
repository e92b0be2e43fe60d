"""LlamaIndex integration: embedding model, late chunking transformation, reranking
postprocessor and hybrid retriever.

Example:
    >>> from llama_index.core import Settings
    >>> from jinarag.llama_index import JinaEmbedding, JinaRerank
    >>> Settings.embed_model = JinaEmbedding("small")
    >>> reranker = JinaRerank("turbo", top_n=3)
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "jinarag.llama_index needs llama-index-core, which is missing: "
        "pip install 'jinarag[llama-index]'"
    ) from exc

from jinarag.llama_index.embedding import JinaEmbedding
from jinarag.llama_index.late_chunking import JinaLateChunker
from jinarag.llama_index.rerank import JinaRerank
from jinarag.llama_index.retriever import JinaHybridRetriever

__all__ = ["JinaEmbedding", "JinaHybridRetriever", "JinaLateChunker", "JinaRerank"]
