"""Search results: :class:`Hit` (one record, its score and where the score came from) and
:class:`SourceScore` (a record's place in one source's ranking).

Example:
    >>> hit = Hit("a", "Lift grows.", {"lang": "en"}, 0.03, "rrf", dense=SourceScore(1, 0.8))
    >>> hit.scored_metadata()["dense_rank"]
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["SCORE_SPACES", "Hit", "SourceScore"]

SCORE_SPACES = ("cosine", "bm25", "rrf", "relative", "dbsf", "sigmoid", "none")
"""The values of :attr:`Hit.score_space`."""


class SourceScore(NamedTuple):
    """A record's place in one source's ranking: ``rank`` from 1, and that source's score."""

    rank: int
    score: float


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id, text, metadata: the stored record (``metadata`` is a copy; change it freely).
        score: the score the results are sorted by; ``score_space`` says what it is:
            ``"cosine"`` (cosine similarity, dense mode), ``"bm25"`` (BM25 score, bm25 mode),
            ``"rrf"`` / ``"relative"`` / ``"dbsf"`` (the fused score, hybrid mode),
            ``"sigmoid"`` (reranker relevance in (0, 1)), ``"none"`` (from :meth:`HybridIndex.get`).
        dense, bm25: the record's :class:`SourceScore` in each source that returned it (dense
            scores are cosine similarities), None when that source did not return it.
        rerank_score: the reranker's sigmoid score when the results were reranked.

    Example:
        >>> hit.scored_metadata()["dense_rank"]
        1
    """

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    score_space: str
    dense: SourceScore | None = None
    bm25: SourceScore | None = None
    rerank_score: float | None = None

    def scored_metadata(self) -> dict[str, Any]:
        """A new dict: the stored metadata plus ``score``, ``score_space`` and, for the
        sources present, ``dense_rank``, ``dense_score``, ``bm25_rank``, ``bm25_score``,
        ``rerank_score``. Framework adapters put this on their documents."""
        out = dict(self.metadata)
        out["score"] = self.score
        out["score_space"] = self.score_space
        if self.dense is not None:
            out["dense_rank"], out["dense_score"] = self.dense
        if self.bm25 is not None:
            out["bm25_rank"], out["bm25_score"] = self.bm25
        if self.rerank_score is not None:
            out["rerank_score"] = self.rerank_score
        return out
