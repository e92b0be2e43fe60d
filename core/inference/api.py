"""The public methods an embedder and a reranker share, local or remote, written once.

:class:`EmbeddingSides` gives :class:`~jinarag.Embedder` and
:class:`~jinarag.inference.remote.RemoteEmbedder` their ``embed*`` methods, and
:class:`RerankingSides` gives :class:`~jinarag.Reranker` and
:class:`~jinarag.inference.remote.RemoteReranker` ``score_pairs``, ``score`` and ``rank``.
Each method checks its arguments here, once, and hands them to a primitive the class
implements (where the work is done: a forward pass, or HTTP requests):

- an embedder: ``_embed(texts, call)`` (checked texts, prefixes already prepended) and
  ``_late_chunks(documents, names, call)`` (checked chunk lists; ``names`` label them in
  errors), with ``query_prefix`` and ``document_prefix``;
- a reranker: ``_score_pairs(pairs, call)`` (checked pairs).

``call`` is an :class:`EmbedCall`, :class:`LateChunkCall` or :class:`ScoreCall`: the call's
checked options. A warning of the run (truncation) names the caller's line, however the
methods call each other (:func:`jinarag.errors.warn`).

Light on purpose (numpy and the validation helpers): :mod:`jinarag.inference.remote` builds on
it without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from jinarag.errors import InputError
from jinarag.inference.calls import ACTIVATIONS, EmbedCall, LateChunkCall, ScoreCall
from jinarag.inference.late_chunking import check_chunks
from jinarag.validation import (
    check_bool,
    check_pairs,
    check_text,
    check_texts,
    known_keywords,
    ordered_list,
    positive_int,
)

__all__ = [
    "ACTIVATIONS",
    "EmbedCall",
    "EmbeddingSides",
    "LateChunkCall",
    "RankedDocument",
    "RerankingSides",
    "ScoreCall",
    "best_first",
    "sigmoid",
]


@dataclass(frozen=True)
class RankedDocument:
    """One document of a ranking: its position in the input, its score and its text."""

    index: int
    score: float
    text: str


def best_first(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    """Indices by score, best first, ties in input order, at most ``top_n``."""
    return np.argsort(-scores, kind="stable")[:top_n].tolist()


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Relevance in (0, 1) from raw logits (computed in float64, returned as float32)."""
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def _prefixed(prefix: str, texts: list[str]) -> list[str]:
    return [prefix + text for text in texts] if prefix else texts


class EmbeddingSides:
    """The ``embed*`` methods, over the class's ``_embed`` and ``_late_chunks``.

    The query and document sides differ only by ``query_prefix`` and ``document_prefix``,
    prepended to each text (a :class:`~jinarag.inference.remote.RemoteEmbedder` has neither:
    the server embeds every text as given).
    """

    query_prefix: str
    document_prefix: str

    def _check_task(self, call: EmbedCall | LateChunkCall) -> None:
        """Refuse ``task`` and ``dimensions`` (the default): an embedder with task adapters
        or Matryoshka dimensions overrides this with its own checks."""
        if call.task is not None or call.dimensions is not None:
            asked = f"task={call.task!r}" if call.task is not None else "dimensions"
            raise InputError(
                f"{asked} is not available on {type(self).__name__}: it embeds without task "
                "adapters or Matryoshka dimensions. Pass task=None and dimensions=None."
            )

    @known_keywords
    def embed(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
        stop: Callable[[], bool] | None = None,
        task: str | None = None,
        dimensions: int | None = None,
        overflow: str = "error",
    ) -> np.ndarray:
        """Embed documents: a float32 array of shape (len(texts), dim), rows in input order.

        A text over ``max_length`` tokens is cut (``truncate=True``, with a
        :class:`~jinarag.errors.TruncationWarning`), refused (``truncate=False``: an
        InputError naming it), or, with ``truncate=False, overflow="pool"``, read whole in
        consecutive windows of ``max_length`` tokens (each with the model's special tokens)
        whose token states are pooled together: the mean over every window's tokens.

        ``task`` picks a task adapter of a model that has them (jina-embeddings-v3:
        ``embedder.tasks``; default ``"retrieval.passage"`` here, ``"retrieval.query"`` on the
        query side), its instruction prepended as the model's config says; ``dimensions``
        keeps the first that many dimensions (Matryoshka; ``embedder.dimensions_allowed``),
        L2-renormalised when ``normalize``. On other models both must stay None.

        With ``normalize=False`` the rows are exactly the mean of the last hidden states over
        the attention mask (accumulated in float32). ``stop``, when given, is asked before each
        batch; once it returns True the call raises
        :class:`~jinarag.errors.Cancelled`.

        A :class:`~jinarag.inference.remote.RemoteEmbedder` embeds on the server, in requests
        of at most its own ``batch_size`` texts, and asks ``stop`` before each request.
        """
        call = EmbedCall.checked(
            batch_size, normalize, show_progress, truncate, stop, task, dimensions, "document",
            overflow,
        )  # fmt: skip
        self._check_task(call)
        return self._embed(_prefixed(self.document_prefix, check_texts(texts)), call)

    @known_keywords
    def embed_documents(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
        task: str | None = None,
        dimensions: int | None = None,
        overflow: str = "error",
    ) -> np.ndarray:
        """The document side; the same as :meth:`embed`."""
        return self.embed(
            texts,
            batch_size=batch_size,
            normalize=normalize,
            show_progress=show_progress,
            truncate=truncate,
            task=task,
            dimensions=dimensions,
            overflow=overflow,
        )

    @known_keywords
    def embed_queries(
        self,
        texts: Iterable[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate: bool = True,
        task: str | None = None,
        dimensions: int | None = None,
        overflow: str = "error",
    ) -> np.ndarray:
        """The query side, batched: ``query_prefix`` is prepended to each text (a
        :class:`~jinarag.inference.remote.RemoteEmbedder` sends the texts as they are);
        ``task`` defaults to the query task of a model with adapters; ``overflow`` as in
        :meth:`embed`."""
        call = EmbedCall.checked(
            batch_size, normalize, show_progress, truncate, None, task, dimensions, "query",
            overflow,
        )  # fmt: skip
        self._check_task(call)
        return self._embed(_prefixed(self.query_prefix, check_texts(texts)), call)

    @known_keywords
    def embed_query(
        self,
        text: str,
        *,
        normalize: bool = True,
        truncate: bool = True,
        task: str | None = None,
        dimensions: int | None = None,
        overflow: str = "error",
    ) -> np.ndarray:
        """One query: a float32 vector of shape (dim,) (or (dimensions,))."""
        text = check_text(text, "text")
        check_bool("normalize", normalize)
        check_bool("truncate", truncate)
        return self.embed_queries(
            [text],
            normalize=normalize,
            truncate=truncate,
            task=task,
            dimensions=dimensions,
            overflow=overflow,
        )[0]

    @known_keywords
    def embed_late_chunks(
        self,
        chunks: Iterable[str],
        *,
        normalize: bool = True,
        long_late_chunking: bool = True,
        overlap: int | None = None,
        batch_size: int = 32,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        """Late chunking of one document: ``chunks`` are its consecutive pieces; they are
        joined with a single space and read as one input, and each chunk's vector is the
        mean of its own tokens' output states (float32, (len(chunks), dim)).

        ``document_prefix``, when the embedder has one, leads the joined text (its tokens
        count for the first chunk). A document longer than ``max_length`` is read in macro
        windows that share
        ``overlap`` tokens (default: 256, at most a quarter of a window;
        ``long_late_chunking=False``: an InputError instead); see
        :mod:`jinarag.inference.late_chunking`.

        A :class:`~jinarag.inference.remote.RemoteEmbedder` sends the document in one request,
        whatever its length; the server reads it with its own overlap, so ``overlap`` must
        stay None.
        """
        call = LateChunkCall.checked(
            batch_size, normalize, long_late_chunking, overlap, False, None, task, dimensions
        )
        self._check_task(call)
        return self._late_chunks([check_chunks(chunks)], ["chunks"], call)[0]

    @known_keywords
    def embed_late_chunks_many(
        self,
        documents: Iterable[Iterable[str]],
        *,
        normalize: bool = True,
        long_late_chunking: bool = True,
        overlap: int | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        stop: Callable[[], bool] | None = None,
        task: str | None = None,
        dimensions: int | None = None,
    ) -> list[np.ndarray]:
        """:meth:`embed_late_chunks` for many documents (each a list of chunks) in one run:
        their windows share batches (on a server: one request each). One (chunks, dim) array
        per document, in order."""
        listed = ordered_list(documents, "documents", "chunk lists", "['first chunk', 'second']")
        names = [f"documents[{number}]" for number in range(len(listed))]
        checked = [check_chunks(chunks, name) for chunks, name in zip(listed, names, strict=True)]
        call = LateChunkCall.checked(
            batch_size,
            normalize,
            long_late_chunking,
            overlap,
            show_progress,
            stop,
            task,
            dimensions,
        )
        self._check_task(call)
        return self._late_chunks(checked, names, call)


class RerankingSides:
    """``score_pairs``, ``score`` and ``rank``, over the class's ``_score_pairs``."""

    @known_keywords
    def score_pairs(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        batch_size: int = 32,
        activation: str | None = "sigmoid",
        show_progress: bool = False,
        truncate: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """One float32 score per (query, document) pair, in input order, any number of
        queries in one pass: pairs of every query share batches.

        Documents are cut to fit ``max_length``, queries never (a query too long to leave
        room for a document is an InputError). ``stop``, when given, is asked before each
        batch; once it returns True the call raises
        :class:`~jinarag.errors.Cancelled`.

        A :class:`~jinarag.inference.remote.RemoteReranker` groups the pairs by query and sends each
        query's documents in ``/v1/rerank`` requests (``stop`` is asked before each).
        """
        return self._score_pairs(
            check_pairs(pairs),
            ScoreCall.checked(activation, batch_size, show_progress, truncate, stop),
        )

    @known_keywords
    def score(
        self,
        query: str,
        documents: Iterable[str],
        *,
        batch_size: int = 32,
        activation: str | None = "sigmoid",
        show_progress: bool = False,
        truncate: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """One float32 score per document, in input order: :meth:`score_pairs` with one
        query."""
        query = check_text(query, "query")
        docs = check_texts(documents, "documents")
        return self._score_pairs(
            [(query, doc) for doc in docs],
            ScoreCall.checked(activation, batch_size, show_progress, truncate, stop),
        )

    @known_keywords
    def rank(
        self,
        query: str,
        documents: Iterable[str],
        *,
        top_n: int | None = None,
        batch_size: int = 32,
        activation: str | None = "sigmoid",
        show_progress: bool = False,
        truncate: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> list[RankedDocument]:
        """The documents best first (ties keep input order), at most ``top_n`` of them.
        ``stop`` is :meth:`score`'s."""
        top_n = positive_int("top_n", top_n, allow_none=True, allow_zero=True)
        docs = check_texts(documents, "documents")
        scores = self.score(
            query,
            docs,
            batch_size=batch_size,
            activation=activation,
            show_progress=show_progress,
            truncate=truncate,
            stop=stop,
        )
        return [RankedDocument(i, float(scores[i]), docs[i]) for i in best_first(scores, top_n)]
