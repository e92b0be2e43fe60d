"""The eval runner: index a :class:`Dataset`, run each search configuration over its judged
queries, and report mean nDCG@10, Recall@100 and the median latency as a Markdown table.

``jinarag eval DATASET_DIR`` prints that table; ``--queries even`` scores the half that was not
used for tuning (see :mod:`jinarag.evaluation.tuning`).

Example:
    >>> index = build_index(dataset, embedder)
    >>> print(format_table(evaluate(index, dataset, query_ids=select_queries(dataset, "even"))))
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.evaluation.beir import Dataset
from jinarag.evaluation.metrics import METRICS, query_metrics
from jinarag.validation import check_bool, check_callable, check_instance, describe, ordered_list

if TYPE_CHECKING:  # the index needs chromadb and the models torch: imported when used
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "QUERY_SETS",
    "Config",
    "Row",
    "build_index",
    "default_configs",
    "evaluate",
    "format_table",
    "judged_ids",
    "rows_list",
    "select_queries",
]

QUERY_SETS = ("all", "odd", "even")


def select_queries(dataset: Dataset, which: str = "all", *, judged: bool = True) -> list[str]:
    """Judged query ids: ``"all"``, ``"odd"`` or ``"even"`` (by numeric id; ids that are not
    numbers use their 1-based position instead). ``judged=False``: every query of the set,
    judged or not (distillation needs no judgements)."""
    if which not in QUERY_SETS:
        raise InputError(f"queries must be 'all', 'odd' or 'even', got {which!r}")
    judged = check_bool("judged", judged)
    pool = dataset.judged_queries() if judged else list(dataset.queries)
    if which == "all":
        return pool
    position = {q: n for n, q in enumerate(dataset.queries, start=1)}
    parity = 1 if which == "odd" else 0
    return [q for q in pool if (int(q) if q.isdigit() else position[q]) % 2 == parity]


@dataclass(frozen=True)
class Config:
    """One row of the eval table: how to search."""

    label: str
    mode: str = "hybrid"
    fusion: str | None = None
    weights: tuple[float, float] | None = None
    rrf_k: float | None = None
    candidates: int | None = None
    rerank: bool = False

    def __post_init__(self) -> None:
        check_instance("label", self.label, str, "name the row, e.g. Config('hybrid rrf')")
        check_bool("rerank", self.rerank)


@dataclass(frozen=True)
class Row:
    """Mean metrics of one configuration over the evaluated queries."""

    label: str
    ndcg10: float
    recall100: float
    p50_ms: float
    queries: int
    map: float = 0.0  # mean average precision over the first 100 results
    mrr: float = 0.0  # mean reciprocal rank of the first relevant result (first 100)
    p10: float = 0.0  # mean precision of the first 10 results


def default_configs(rerank: bool = False) -> list[Config]:
    """bm25, dense, each fusion with the index's defaults, and hybrid + rerank if asked."""
    rerank = check_bool("rerank", rerank)
    configs = [
        Config("bm25", mode="bm25"),
        Config("dense", mode="dense"),
        Config("hybrid rrf", fusion="rrf"),
        Config("hybrid relative", fusion="relative"),
        Config("hybrid dbsf", fusion="dbsf"),
    ]
    if rerank:
        configs.append(Config("hybrid + rerank", rerank=True))
    return configs


def evaluate(
    index: HybridIndex,
    dataset: Dataset,
    configs: Sequence[Config] | None = None,
    query_ids: Sequence[str] | None = None,
    *,
    reranker: Reranker | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Run every config through :meth:`HybridIndex.search` (100 results per query) and score
    them; ``p50_ms`` is the median wall time of one search call, query embedding included."""
    if not callable(getattr(index, "search", None)):
        raise InputError(
            f"index must be a HybridIndex, got {describe(index)}; build one "
            "with build_index(dataset, embedder)"
        )
    check_instance("dataset", dataset, Dataset, "read one with load_beir(folder)")
    if configs is None:
        configs = default_configs(reranker is not None)
    configs = ordered_list(configs, "configs", "Configs", "Config('bm25', mode='bm25')", "Config")
    for number, config in enumerate(configs):
        check_instance(f"configs[{number}]", config, Config, "e.g. Config('bm25', mode='bm25')")
    qids = judged_ids(dataset, query_ids) if query_ids is not None else dataset.judged_queries()
    if not qids:
        raise InputError(f"no judged queries to evaluate in {dataset.name!r}")
    check_callable("progress", progress)
    if reranker is not None and not callable(getattr(reranker, "score", None)):
        raise InputError(
            f"reranker must be a Reranker or None, got {describe(reranker)}; pass "
            "jinarag.Reranker.from_pretrained('turbo')"
        )
    rows = []
    for config in configs:
        if progress is not None:
            progress(config.label)
        if config.rerank and reranker is None:
            raise InputError(f"config {config.label!r} reranks, but no reranker was given")
        scores: dict[str, list[float]] = {name: [] for name in METRICS}
        times = []
        for q in qids:
            started = time.perf_counter()
            hits = index.search(
                dataset.queries[q],
                k=100,
                mode=config.mode,
                fusion=config.fusion,
                weights=config.weights,
                rrf_k=config.rrf_k,
                candidates=config.candidates,
                rerank=reranker if config.rerank else False,
            )
            times.append(time.perf_counter() - started)
            found = query_metrics([h.id for h in hits], dataset.qrels[q])
            for name, value in found.items():
                scores[name].append(value)
        mean = {name: statistics.fmean(values) for name, values in scores.items()}
        rows.append(
            Row(
                config.label,
                mean["ndcg10"],
                mean["recall100"],
                statistics.median(times) * 1000,
                len(qids),
                map=mean["map"],
                mrr=mean["mrr"],
                p10=mean["p10"],
            )
        )
    return rows


def judged_ids(dataset: Dataset, query_ids: Sequence[str], name: str = "query_ids") -> list[str]:
    """``query_ids`` as a list, each a judged query of ``dataset``; else an InputError naming
    the first that is not (or the argument, when it is no list)."""
    ids = ordered_list(query_ids, name, "query ids", "'1'", one="id")
    for number, query_id in enumerate(ids):
        if query_id not in dataset.queries or query_id not in dataset.qrels:
            raise InputError(
                f"{name}[{number}]={query_id!r:.60} is not a judged query of {dataset.name!r}; "
                "take the ids from select_queries(dataset)"
            )
    return ids


def rows_list(rows: Sequence[Row], name: str = "rows") -> list[Row]:
    """``rows`` as a list of :class:`Row` (what :func:`evaluate` returns), or an InputError."""
    listed = ordered_list(rows, name, "Rows", "Row(...)", "Row")
    for number, row in enumerate(listed):
        check_instance(f"{name}[{number}]", row, Row, "pass the rows evaluate() returned")
    return listed


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of the rows."""
    rows = rows_list(rows)
    lines = [
        "| method | nDCG@10 | Recall@100 | MAP | MRR | P@10 | p50 latency (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.label} | {r.ndcg10:.4f} | {r.recall100:.4f} | {r.map:.4f} | {r.mrr:.4f} | "
        f"{r.p10:.4f} | {r.p50_ms:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def build_index(
    dataset: Dataset,
    embedder: Embedder,
    path: str | os.PathLike[str] | None = None,
    *,
    show_progress: bool = False,
    **options: Any,
) -> HybridIndex:
    """A HybridIndex over the dataset's corpus (reused when ``path`` already holds it)."""
    from jinarag.retrieval.index import HybridIndex

    check_instance("dataset", dataset, Dataset, "read one with load_beir(folder)")
    index = HybridIndex(path, collection="beir", embedder=embedder, **options)
    ids, texts, metas = dataset.records()
    if index.count() != len(ids) or set(index.bm25_index.ids) != set(ids):
        index.add(texts, ids=ids, metadatas=metas, show_progress=show_progress)
    return index
