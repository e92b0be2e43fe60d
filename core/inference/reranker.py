"""Cross-encoder reranking: jina-reranker-v1 base/turbo/tiny, or any BERT cross-encoder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from jinarag.inference.heads import first_tokens
from jinarag.inference.pipeline import DeviceBatch
from jinarag.inference.pretrained import PretrainedModel
from jinarag.models.checkpoint import Kind
from jinarag.models.tokenization import Encoded
from jinarag.validation import (
    check_bool,
    check_choice,
    check_pairs,
    check_text,
    check_texts,
    positive_int,
)

__all__ = ["RankedDocument", "Reranker", "best_first", "sigmoid"]

ACTIVATIONS = ("sigmoid", None)


@dataclass(frozen=True)
class RankedDocument:
    """One document of a ranking: its position in the input, its score and its text."""

    index: int
    score: float
    text: str


class Reranker(PretrainedModel):
    """Scores (query, document) pairs with a cross-encoder, locally.

    Example:
        >>> reranker = Reranker.from_pretrained("turbo")  # or "tiny", "base", a directory
        >>> reranker.score("wing flutter", ["flutter of swept wings", "heat transfer"])
        array([0.93, 0.02], dtype=float32)
        >>> reranker.rank("wing flutter", ["heat transfer", "flutter of swept wings"], top_n=1)
        [RankedDocument(index=1, score=0.93, text='flutter of swept wings')]
        >>> reranker.score_pairs([("wing flutter", "flutter of swept wings"),
        ...                       ("heat transfer", "flutter of swept wings")])
        array([0.93, 0.01], dtype=float32)

    ``activation="sigmoid"`` gives relevance in (0, 1) (the Jina API's ``relevance_score``);
    ``activation=None`` the raw logit.
    """

    kind: ClassVar[Kind] = "reranker"

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
        :class:`~jinarag.inference.pipeline.Cancelled`.
        """
        checked = check_pairs(pairs)
        check_choice("activation", activation, ACTIVATIONS)
        # Checked before the empty case returns, so a bad argument never passes unseen.
        batch_size = positive_int("batch_size", batch_size)
        show_progress = check_bool("show_progress", show_progress)
        truncate = check_bool("truncate", truncate)
        if not checked:
            return np.zeros((0,), dtype=np.float32)
        max_length = self.max_length

        def encode(start: int, stop: int) -> Encoded:
            return self.tokenizer.encode_pair_list(
                checked[start:stop], max_length=max_length, truncate=truncate, offset=start
            )

        logits = self._run(
            len(checked),
            encode,
            self._relevance,
            batch_size=batch_size,
            show_progress=show_progress,
            what="pairs",
            should_stop=stop,
        )
        return _activate(logits, activation)

    def _relevance(
        self, hidden: torch.Tensor, batch: DeviceBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The head: each pair's logit from its first token's state."""
        return self.model.relevance(first_tokens(hidden, batch)), batch.index

    def tokenize_pairs(self, pairs: Iterable[tuple[str, str]], *, truncate: bool = True) -> Encoded:
        """The token ids of (query, document) pairs as :meth:`score_pairs` reads them, for
        :meth:`score_tokens`."""
        checked = check_pairs(pairs)
        truncate = check_bool("truncate", truncate)
        return self.tokenizer.encode_pair_list(
            checked, max_length=self.max_length, truncate=truncate
        )

    def score_tokens(
        self,
        encoded: Encoded,
        *,
        activation: str | None = "sigmoid",
        batch_size: int = 32,
        stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        """:meth:`score_pairs` of pairs tokenised by :meth:`tokenize_pairs`. ``max_tokens``: a
        pass's token budget (default ``max_batch_tokens``)."""
        check_choice("activation", activation, ACTIVATIONS)
        if not len(encoded):
            return np.zeros((0,), dtype=np.float32)
        logits = self._run_tokens(
            encoded,
            self._relevance,
            batch_size=positive_int("batch_size", batch_size),
            what="pairs",
            should_stop=stop,
            max_tokens=positive_int("max_tokens", max_tokens, allow_none=True),
        )
        return _activate(logits, activation)

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
        return self.score_pairs(
            [(query, doc) for doc in docs],
            batch_size=batch_size,
            activation=activation,
            show_progress=show_progress,
            truncate=truncate,
            stop=stop,
        )

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


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Relevance in (0, 1) from raw logits (computed in float64, returned as float32)."""
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def best_first(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    """Indices by score, best first, ties in input order, at most ``top_n``."""
    return np.argsort(-scores, kind="stable")[:top_n].tolist()


def _activate(logits: np.ndarray, activation: str | None) -> np.ndarray:
    """``logits`` through ``activation`` (``"sigmoid"``: relevance in (0, 1); None: as is)."""
    return sigmoid(logits) if activation == "sigmoid" else logits
