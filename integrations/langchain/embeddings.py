"""`JinaEmbeddings`: LangChain's `Embeddings` over a local `jinarag.Embedder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict

from jinarag.inference.embedder import Embedder
from jinarag.langchain._loading import LoadingFields, check_fields, load_options


class JinaEmbeddings(LoadingFields, Embeddings):
    """Jina embeddings computed locally, as a LangChain `Embeddings`.

    Build it from a model name or path (loaded with `jinarag.Embedder.from_pretrained`) or wrap
    an `Embedder` you already have. The loading options are fields named as in
    `jinarag.LoadOptions` (`device`, `dtype`, `max_length`, ...); an unknown keyword is an
    `InputError`. Documents go through the document side and queries through the query side,
    which differ for models with a query prefix. The async methods run the sync path in a
    worker thread (LangChain's default).

    Example:
        >>> from jinarag.langchain import JinaEmbeddings
        >>> embeddings = JinaEmbeddings("small")  # or model="small", or embedder=...
        >>> vectors = embeddings.embed_documents(["lift of a wing in a slipstream"])
        >>> query = embeddings.embed_query("what lifts a wing?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str | Path | None = None
    """Alias (`"small"`, `"base"`, ...), Hub id or local directory (or give `embedder`)."""
    embedder: Embedder | None = None
    """An already loaded embedder to use instead of loading `model`."""
    batch_size: int = 32
    normalize: bool = True
    """L2-normalise the vectors (cosine, dot product and Euclidean ranks then agree)."""

    def __init__(self, model: str | Path | None = None, **data: Any) -> None:
        check_fields("JinaEmbeddings", type(self), data)
        super().__init__(model=model, **data)
        # Loaded here, not in a pydantic validator, so our errors reach the caller unwrapped.
        self.embedder = Embedder.load_or_use(
            "JinaEmbeddings", self.model, self.embedder, options=load_options(self)
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (document side) as lists of floats, one per text."""
        vectors = self.embedder.embed_documents(
            texts, batch_size=self.batch_size, normalize=self.normalize
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (query side) as a list of floats."""
        return self.embedder.embed_query(text, normalize=self.normalize).tolist()
