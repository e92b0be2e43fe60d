"""`JinaReranker`: a LangChain document compressor and cross encoder over `jinarag.Reranker`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, SecretStr

from jinarag.inference.resolve import load_or_use
from jinarag.langchain._loading import (
    LoadingFields,
    check_fields,
    check_source,
    check_values,
    document_list,
    load_options,
    secret_value,
)
from jinarag.langchain.conventions import with_env_key
from jinarag.validation import check_number, check_pairs, positive_int


class JinaReranker(LoadingFields, BaseDocumentCompressor, BaseCrossEncoder):
    """Rerank LangChain documents with a Jina cross-encoder, local or on a `jinarag serve`
    server (`base_url`).

    As a document compressor (for `ContextualCompressionRetriever`) it returns new documents,
    best first: at most `top_n` of them, only those scoring at least `score_threshold`, each
    with its score in `metadata["relevance_score"]` (a sigmoid in (0, 1), as the Jina API
    reports it) and with its `id` and other metadata kept. The input documents are not changed.
    As a `BaseCrossEncoder` (for langchain-classic's `CrossEncoderReranker`) it scores
    `(query, text)` pairs. The loading options are fields named as in `jinarag.LoadOptions`
    (`device`, `dtype`, `max_length`, ...); an unknown keyword is an `InputError`.

    Example:
        >>> from langchain_core.documents import Document
        >>> from jinarag.langchain import JinaReranker
        >>> reranker = JinaReranker("turbo", top_n=2)  # or reranker=<a jinarag.Reranker>
        >>> docs = [Document("wings in a slipstream"), Document("heat in slabs")]
        >>> best = reranker.compress_documents(docs, "slipstream lift")
        >>> score = best[0].metadata["relevance_score"]
        >>> served = JinaReranker(base_url="http://127.0.0.1:8080")  # `jinarag serve`
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str | Path | None = None
    """Alias (`"turbo"`, `"tiny"`, `"base"`), Hub id or local directory; or give `reranker`."""
    reranker: Any = None  # a Reranker or RemoteReranker: typed loosely, so no torch to import
    """An already loaded reranker to use instead of loading `model`."""
    base_url: str | None = None
    """The root URL of a `jinarag serve` server whose reranker to use instead of loading one."""
    api_key: SecretStr | None = None
    """The server's API key; None: `$JINARAG_API_KEY`, read when the object is made."""
    top_n: int | None = 3
    """How many documents `compress_documents` keeps (a positive integer); None keeps them
    all."""
    score_threshold: float | None = None
    """Drop documents whose relevance score is below this: a number from 0 to 1 (the scores
    are in (0, 1)); None keeps them all."""
    batch_size: int = 32

    def __init__(self, model: str | Path | None = None, **data: Any) -> None:
        data = with_env_key(data)  # LangChain's convention: the key from the environment
        check_fields("JinaReranker", type(self), data)
        check_source("reranker", model, data)
        data = check_values(
            data,
            top_n=partial(positive_int, allow_none=True),
            # The scores are sigmoids, in (0, 1): a threshold outside [0, 1] keeps all or none.
            score_threshold=partial(check_number, low=0.0, high=1.0, allow_none=True),
            batch_size=positive_int,
        )
        super().__init__(model=model, **data)
        # Loaded here, not in a pydantic validator, so our errors reach the caller unwrapped.
        self.reranker = load_or_use(
            "reranker",
            "JinaReranker",
            self.model,
            self.reranker,
            options=load_options(self),
            base_url=self.base_url,
            api_key=secret_value(self.api_key),
        )

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Return new documents ranked by relevance to `query`, with `relevance_score`."""
        documents = document_list(documents)
        ranked = self.reranker.rank(
            query,
            [doc.page_content for doc in documents],
            top_n=self.top_n,
            batch_size=self.batch_size,
        )
        threshold = self.score_threshold
        return [
            # model_copy keeps the id and the document's type; the metadata dict is a new one.
            documents[r.index].model_copy(
                update={
                    "metadata": {**documents[r.index].metadata, "relevance_score": float(r.score)}
                }
            )
            for r in ranked
            if threshold is None or r.score >= threshold
        ]

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """Score `(query, text)` pairs; relevance scores in (0, 1), in the order given.

        Pairs of different queries share batches (`Reranker.score_pairs`)."""
        scores = self.reranker.score_pairs(
            check_pairs(text_pairs, "text_pairs"), batch_size=self.batch_size
        )
        return [float(value) for value in scores]
