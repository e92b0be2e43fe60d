"""`JinaRanker`: a local Jina cross-encoder reranker as a Haystack component."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from haystack import Document, component, default_to_dict
from haystack.utils import ComponentDevice, Secret

from jinarag.errors import InputError
from jinarag.haystack._common import (
    API_KEY,
    checked_options,
    document_list,
    document_texts,
    fresh_copy,
    from_dict,
    load_options,
    meta_fields,
    model_or_default,
    options_init_parameters,
    remote_model,
    server_init_parameters,
)
from jinarag.inference.defaults import DEFAULT_RERANKER
from jinarag.inference.remote import RemoteReranker
from jinarag.inference.reranker import Reranker
from jinarag.inference.resolve import resolve
from jinarag.validation import check_bool, check_number, positive_int


@component
class JinaRanker:
    """Reorders Documents by their relevance to a query with a Jina reranker, local or on a
    server.

    Returns new Documents, best first, with `score` set to the reranker's score: the sigmoid of
    its logit in (0, 1) when `scale_score` is true (what the Jina API calls `relevance_score`),
    the raw logit otherwise. The input Documents are left untouched.

    Loading options are keyword arguments named as in `jinarag.LoadOptions` (`dtype`,
    `max_length`, `revision`, `local_files_only`, `max_batch_tokens`, `quantize`,
    `attention`, `num_threads`; `device` is the usual Haystack parameter). They are checked
    when the component is created, kept in `load_options`, and written by `to_dict`.

    With `base_url` (the root of a `jinarag serve` server) the server's reranker is used and
    nothing is loaded; `api_key` is a Haystack `Secret` (default: the env var
    `JINARAG_API_KEY`, optional), and `to_dict` writes `base_url` and the secret's env var
    name, never a key. A `model`, `device` or loading option given with `base_url` is an
    `InputError`. A server's scores are sigmoid relevance scores: `scale_score=False` (raw
    logits) is an `InputError` then.

    Example:
        >>> from haystack import Document
        >>> from jinarag.haystack import JinaRanker
        >>> ranker = JinaRanker(model="turbo", top_k=2)
        >>> docs = [Document(content="Lift grows with speed."), Document(content="Paris.")]
        >>> best = ranker.run(query="what lifts a wing?", documents=docs)["documents"][0]
        >>> served = JinaRanker(base_url="http://127.0.0.1:8080", top_k=2)  # `jinarag serve`
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: ComponentDevice | str | None = None,
        top_k: int | None = 10,
        score_threshold: float | None = None,
        scale_score: bool = True,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        batch_size: int = 32,
        base_url: str | None = None,
        api_key: Secret = API_KEY,
        **load_options: Any,
    ) -> None:
        self.model = model_or_default(model, base_url, DEFAULT_RERANKER)
        self.device = device
        self.top_k, self.score_threshold, self.scale_score = _ranking(
            top_k, score_threshold, scale_score
        )
        self.meta_fields_to_embed, self.embedding_separator = meta_fields(
            meta_fields_to_embed, embedding_separator
        )
        self.batch_size = positive_int("batch_size", batch_size)
        self.base_url = base_url
        self.api_key = api_key
        self.load_options = checked_options(self, load_options)
        self.reranker: Reranker | RemoteReranker | None = remote_model(self, "reranker")
        if self.reranker is not None and not self.scale_score:
            raise InputError(
                f"JinaRanker got base_url={base_url!r} and scale_score=False: a server answers "
                "sigmoid relevance scores, not raw logits; drop scale_score=False, or base_url "
                "to load the reranker here"
            )

    def warm_up(self) -> None:
        """Load the model once; later calls keep the loaded one."""
        if self.reranker is None:
            self.reranker = resolve(
                "reranker", self.model, options=load_options(self), owner=type(self).__name__
            )

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Rank `documents` against `query`; the arguments override the init values.

        Args:
            query: The query.
            documents: The Documents to rank.
            top_k: How many to return at most, a positive integer (None: all).
            score_threshold: Drop Documents scoring below it.
            scale_score: True for sigmoid scores in (0, 1), False for raw logits.

        Returns:
            `{"documents": [...]}`: new Documents, best first, with `score` set.
        """
        top_k, threshold, scale = _ranking(
            top_k if top_k is not None else self.top_k,
            score_threshold if score_threshold is not None else self.score_threshold,
            scale_score if scale_score is not None else self.scale_score,
        )
        documents = document_list(documents, need_content=True)
        texts = document_texts(documents, self.meta_fields_to_embed, self.embedding_separator)
        self.warm_up()
        ranked = self.reranker.rank(
            query,
            texts,
            top_n=top_k,
            batch_size=self.batch_size,
            activation="sigmoid" if scale else None,
        )
        return {
            "documents": [
                fresh_copy(documents[r.index], score=float(r.score))
                for r in ranked
                if threshold is None or r.score >= threshold
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """`run` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(
            self.run, query, documents, top_k, score_threshold, scale_score
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise the init parameters (the model is loaded again after `from_dict`)."""
        return default_to_dict(
            self,
            model=self.model,
            device=self.device,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            scale_score=self.scale_score,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            batch_size=self.batch_size,
            **server_init_parameters(self),
            **options_init_parameters(self),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaRanker:
        """Rebuild the component from `to_dict`'s output."""
        return from_dict(cls, data)


def _ranking(
    top_k: Any, score_threshold: Any, scale_score: Any
) -> tuple[int | None, float | None, bool]:
    """`top_k` (None: all; 0 is refused, as by Haystack's own rankers), `score_threshold` and
    `scale_score`, checked (the init values, or a `run`'s)."""
    return (
        positive_int("top_k", top_k, allow_none=True),
        check_number("score_threshold", score_threshold, allow_none=True),
        check_bool("scale_score", scale_score),
    )
