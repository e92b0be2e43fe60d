"""Cross-encoder reranking: jina-reranker-v1 base/turbo/tiny, or any BERT cross-encoder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

import numpy as np
import torch

from jinarag.inference.api import (
    ACTIVATIONS,
    RankedDocument,
    RerankingSides,
    ScoreCall,
    best_first,
    sigmoid,
)
from jinarag.inference.heads import first_tokens
from jinarag.inference.pipeline import DeviceBatch
from jinarag.inference.pretrained import PretrainedModel
from jinarag.models.checkpoint import Kind
from jinarag.models.tokenization import Encoded
from jinarag.validation import (
    check_bool,
    check_choice,
    check_instance,
    check_pairs,
    known_keywords,
    positive_int,
)

__all__ = ["RankedDocument", "Reranker", "best_first", "sigmoid"]


class Reranker(RerankingSides, PretrainedModel):
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

    def _score_pairs(self, pairs: list[tuple[str, str]], call: ScoreCall) -> np.ndarray:
        if not pairs:
            return np.zeros((0,), dtype=np.float32)
        max_length = self.max_length

        def encode(start: int, stop: int) -> Encoded:
            return self.tokenizer.encode_pair_list(
                pairs[start:stop], max_length=max_length, truncate=call.truncate, offset=start
            )

        logits = self._run(
            len(pairs),
            encode,
            self._relevance,
            batch_size=call.batch_size,
            show_progress=call.show_progress,
            what="pairs",
            should_stop=call.stop,
        )
        return _activate(logits, call.activation)

    def _relevance(
        self, hidden: torch.Tensor, batch: DeviceBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The head: each pair's logit from its first token's state."""
        return self.model.relevance(first_tokens(hidden, batch)), batch.index

    @known_keywords
    def tokenize_pairs(self, pairs: Iterable[tuple[str, str]], *, truncate: bool = True) -> Encoded:
        """The token ids of (query, document) pairs as :meth:`score_pairs` reads them, for
        :meth:`score_tokens`."""
        checked = check_pairs(pairs)
        truncate = check_bool("truncate", truncate)
        return self.tokenizer.encode_pair_list(
            checked, max_length=self.max_length, truncate=truncate
        )

    @known_keywords
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
        check_instance("encoded", encoded, Encoded, "make it with reranker.tokenize_pairs(pairs)")
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


def _activate(logits: np.ndarray, activation: str | None) -> np.ndarray:
    """``logits`` through ``activation`` (``"sigmoid"``: relevance in (0, 1); None: as is)."""
    return sigmoid(logits) if activation == "sigmoid" else logits
