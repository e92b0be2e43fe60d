"""BM25 keyword search: one tokenizer, two backends, and a snapshot file that survives restarts.

The tokenizer (used for documents and queries alike, :mod:`jinarag.retrieval.keyword.tokenizer`,
its names importable from here too) applies Unicode NFKC normalisation, case-folds, splits into
runs of letters and digits, and optionally drops stopwords and stems. The analyser settings are
stored with the snapshot, so documents and queries are always cut the same way.

Backends: ``"rank_bm25"`` (the rank-bm25 package: ``okapi``, ``bm25l``, ``bm25plus``),
``"bm25s"`` (the bm25s package, extra ``fast-bm25``: the same variants, sparse scoring that
stays fast on large corpora: about 4 ms a query over 100k documents where rank-bm25 takes 60)
and ``"auto"`` (the default): rank-bm25 below :data:`AUTO_BM25S_RECORDS` records, bm25s from
there on when it is installed (chosen each time the scorer is built, so an index that grows
moves over; their Okapi and BM25+ top 10 agree; BM25L and an ``epsilon`` given stay on
rank-bm25, whose BM25L formula and idf floor bm25s does not share).
Only documents that share at least one term with the query are hits, and hits whose score
is not positive are dropped. (Okapi's idf,
``log((N - n + 0.5) / (n + 0.5))``, is zero for a term found in half of the documents, and
rank-bm25 raises negative values to ``epsilon`` × the mean idf; on tiny corpora that leaves
few positive scores.)

The snapshot (:meth:`BM25Index.save`) stores the tokenised corpus as JSON, never pickled
objects, and is written atomically; :mod:`jinarag.retrieval.keyword.snapshot` has the file format.

Example:
    >>> index = BM25Index()
    >>> index.upsert(["a", "b", "c"], ["the wing stalls", "a supersonic wing", "heat flux"])
    >>> [doc_id for doc_id, _ in index.search("supersonic wing", k=2)]
    ['b', 'a']
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jinarag.errors import InputError
from jinarag.retrieval.keyword.snapshot import read_snapshot, write_snapshot
from jinarag.retrieval.keyword.tokenizer import (
    ENGLISH_STOPWORDS,
    Tokenizer,
    stemmer_names,
    tokenize,
)
from jinarag.validation import check_choice, check_number

__all__ = [
    "AUTO_BM25S_RECORDS",
    "BACKENDS",
    "ENGLISH_STOPWORDS",
    "VARIANTS",
    "BM25Index",
    "Tokenizer",
    "check_bm25_param",
    "stemmer_names",
    "tokenize",
]

VARIANTS = ("okapi", "bm25l", "bm25plus")
"""BM25 variants: Okapi BM25 (with rank-bm25's idf floor), BM25L and BM25+."""

BACKENDS = ("auto", "rank_bm25", "bm25s")
AUTO_BM25S_RECORDS = 20_000
"""From this many records on, ``backend="auto"`` scores with bm25s (when installed)."""


def check_bm25_param(name: str, value: float | None) -> float | None:
    # k1 saturates term frequency (usually 1.2-2.0); b in [0, 1] scales by document length
    # (0: none, 1: full); epsilon and delta are floors, never negative.
    return check_number(name, value, low=0, high=1 if name == "b" else None, allow_none=True)


class BM25Index:
    """An in-memory BM25 index over ``(id, text)`` records, with upsert, delete and snapshots.

    Args:
        variant: one of :data:`VARIANTS`.
        k1, b: term-frequency saturation and length normalisation (library defaults 1.5, 0.75).
        epsilon: Okapi's idf floor, as a fraction of the mean idf (rank-bm25 only; default 0.25).
        delta: the BM25L / BM25+ lower bound (defaults 0.5 / 1.0).
        backend: ``"auto"`` (rank-bm25 for small corpora, bm25s for large ones when
            installed), ``"rank_bm25"`` or ``"bm25s"`` (``pip install 'jinarag[fast-bm25]'``).
        tokenizer: a :class:`Tokenizer`, or None for the default one.

    Example:
        >>> index = BM25Index(variant="bm25plus", k1=1.2)
        >>> index.upsert(["x"], ["boundary layer transition"])
        >>> index.search("transition", k=5)[0][0]
        'x'
    """

    def __init__(
        self,
        variant: str = "okapi",
        *,
        k1: float | None = None,
        b: float | None = None,
        epsilon: float | None = None,
        delta: float | None = None,
        backend: str = "auto",
        tokenizer: Tokenizer | None = None,
    ) -> None:
        check_choice("BM25 variant", variant, VARIANTS)
        check_choice("BM25 backend", backend, BACKENDS)
        if epsilon is not None and (backend == "bm25s" or variant != "okapi"):
            raise InputError(
                f"epsilon applies to variant 'okapi' with backend 'rank_bm25' or 'auto' only "
                f"(got variant {variant!r}, backend {backend!r}); leave it None"
            )
        if delta is not None and variant == "okapi":
            raise InputError("delta applies to variants 'bm25l' and 'bm25plus' only; leave it None")
        if backend == "bm25s":
            _import_bm25s()
        self.variant = variant
        self.backend = backend
        self.k1 = check_bm25_param("k1", k1)
        self.b = check_bm25_param("b", b)
        self.epsilon = check_bm25_param("epsilon", epsilon)
        self.delta = check_bm25_param("delta", delta)
        self.tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self._docs: dict[str, list[str]] = {}
        self._engine: _Engine | None = None

    @property
    def scorer_backend(self) -> str:
        """The library that scores now: :attr:`backend`, with ``"auto"`` resolved for the
        records held (bm25s from :data:`AUTO_BM25S_RECORDS` on, when installed)."""
        if self.backend != "auto":
            return self.backend
        # BM25L is left to rank-bm25: bm25s follows the published formula, rank-bm25 another
        # (their top 10 agree 34% of the time), and a store must not change rankings as it grows.
        if (
            self.epsilon is None
            and self.variant != "bm25l"
            and len(self._docs) >= AUTO_BM25S_RECORDS
        ):
            try:
                import bm25s  # noqa: F401
            except ImportError:
                return "rank_bm25"
            return "bm25s"
        return "rank_bm25"

    # -- records ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def ids(self) -> list[str]:
        """The indexed ids, in insertion order."""
        return list(self._docs)

    def tokens(self, doc_id: str) -> list[str]:
        """The stored terms of one record (a copy)."""
        return list(self._docs[doc_id])

    def upsert(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add records, replacing the terms of ids already present."""
        self.upsert_tokens(ids, [self.tokenizer(t) for t in texts])

    def upsert_tokens(self, ids: Sequence[str], token_lists: Sequence[Sequence[str]]) -> None:
        """Like :meth:`upsert`, with texts already split by :attr:`tokenizer`."""
        if len(ids) != len(token_lists):
            raise InputError(f"got {len(ids)} ids for {len(token_lists)} token lists")
        for doc_id, toks in zip(ids, token_lists, strict=True):
            self._docs[doc_id] = list(toks)
        self._engine = None

    def delete(self, ids: Iterable[str]) -> None:
        """Remove records; unknown ids are ignored."""
        for doc_id in ids:
            self._docs.pop(doc_id, None)
        self._engine = None

    def clear(self) -> None:
        """Remove every record."""
        self._docs.clear()
        self._engine = None

    # -- search -------------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 10, allowed: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, bm25_score)`` pairs for ``query``, best first.

        Args:
            query: the query text (tokenised like the documents).
            k: how many hits at most.
            allowed: when given, only these ids are ranked (a filter applied before ranking,
                so ``k`` hits come back whenever ``k`` matching ones exist).
        """
        terms = self.tokenizer(query)
        if k <= 0 or not terms or not self._docs:
            return []
        if self._engine is None:
            self._engine = _Engine(self)
        return self._engine.search(terms, k, allowed)

    # -- snapshots ----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], state: dict[str, Any]) -> None:
        """Write the tokenised corpus and ``state`` (what it was built from) atomically."""
        write_snapshot(Path(path), self.tokenizer.spec(), state, self._docs)

    def load(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        """Replace the records with a snapshot's and return its ``state``.

        Returns None, leaving the index as it was, when the file is missing, unreadable or
        was made with another tokenizer: the caller then rebuilds from its source of truth.
        """
        got = read_snapshot(Path(path), self.tokenizer.spec())
        if got is None:
            return None
        state, self._docs = got
        self._engine = None
        return state


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError as exc:
        raise ImportError(
            "bm25_backend='bm25s' needs the bm25s package: pip install 'jinarag[fast-bm25]'"
        ) from exc
    return bm25s


class _Engine:
    """A frozen view of the records with postings and a backend scorer; rebuilt after changes."""

    def __init__(self, index: BM25Index) -> None:
        self.ids = list(index._docs)
        self.position = {doc_id: i for i, doc_id in enumerate(self.ids)}
        corpus = list(index._docs.values())
        postings: dict[str, list[int]] = {}
        for pos, toks in enumerate(corpus):
            for term in set(toks):
                postings.setdefault(term, []).append(pos)
        self.postings = {t: np.asarray(p, dtype=np.int64) for t, p in postings.items()}
        self.scorer: Any = None
        if not self.postings:  # no terms at all: nothing can match (and the libraries divide by 0)
            return
        params = {"k1": index.k1, "b": index.b, "epsilon": index.epsilon, "delta": index.delta}
        params = {name: v for name, v in params.items() if v is not None}
        if index.scorer_backend == "rank_bm25":
            import rank_bm25

            cls = {"okapi": rank_bm25.BM25Okapi, "bm25l": rank_bm25.BM25L}.get(
                index.variant, rank_bm25.BM25Plus
            )
            self.scorer = cls(corpus, **params)
            self.score = self._score_rank_bm25
        else:
            bm25s = _import_bm25s()
            method = {"okapi": "robertson", "bm25l": "bm25l", "bm25plus": "bm25+"}[index.variant]
            if "delta" not in params and index.variant == "bm25plus":
                params["delta"] = 1.0  # the same default as rank-bm25's BM25Plus
            self.scorer = bm25s.BM25(method=method, **params)
            self.scorer.index(corpus, show_progress=False)
            self.score = self._score_bm25s

    def _score_rank_bm25(self, terms: list[str], positions: np.ndarray) -> np.ndarray:
        return np.asarray(self.scorer.get_batch_scores(terms, positions.tolist()), dtype=np.float64)

    def _score_bm25s(self, terms: list[str], positions: np.ndarray) -> np.ndarray:
        known = [t for t in terms if t in self.scorer.vocab_dict]
        return np.asarray(self.scorer.get_scores(known), dtype=np.float64)[positions]

    def search(
        self, terms: list[str], k: int, allowed: Collection[str] | None
    ) -> list[tuple[str, float]]:
        hits = [self.postings[t] for t in set(terms) if t in self.postings]
        if not hits:
            return []
        positions = np.unique(np.concatenate(hits))
        if allowed is not None:
            keep = np.fromiter(
                (self.position[i] for i in allowed if i in self.position), dtype=np.int64
            )
            positions = np.intersect1d(positions, keep)
            if positions.size == 0:
                return []
        scores = self.score(terms, positions)
        order = np.lexsort((positions, -scores))  # best score first, then insertion order
        out: list[tuple[str, float]] = []
        for j in order:
            if scores[j] <= 0 or len(out) == k:
                break
            out.append((self.ids[positions[j]], float(scores[j])))
        return out
