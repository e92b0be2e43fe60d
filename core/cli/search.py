"""`jinarag search`: query a hybrid index and print a table of the results (or, with
``--json``, a JSON array of them).

Example::

    jinarag search "how does a slipstream change lift?" --store ./jinarag-store --k 5
    jinarag search "slipstream" --store ./jinarag-store --json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from jinarag.cli.common import (
    add_json_option,
    add_store_options,
    count,
    load_reranker,
    loading_options,
    open_index,
    print_json,
)
from jinarag.errors import InputError

if TYPE_CHECKING:
    from jinarag.retrieval.search.hits import Hit, SourceScore

__all__ = ["add_parser", "hit_json", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="search a hybrid index and print a table")
    parser.add_argument("query")
    add_store_options(parser)
    parser.add_argument("--mode", default="hybrid", help="hybrid, dense or bm25")
    parser.add_argument("--k", type=count, default=10, help="results to show")
    parser.add_argument("--fusion", help="rrf, relative or dbsf (default: the index's, rrf)")
    parser.add_argument("--weights", help="dense,bm25 fusion weights, e.g. 0.75,1")
    parser.add_argument("--where", help='a Chroma metadata filter as JSON, e.g. \'{"lang": "en"}\'')
    parser.add_argument(
        "--rerank",
        nargs="?",
        const="",
        metavar="MODEL",
        help="rerank the fused results (default model: Jina turbo, skipped if unavailable)",
    )
    add_json_option(parser)
    parser.set_defaults(handler=run)


def _weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError as exc:
        raise InputError(
            f"--weights must be two numbers like 0.75,1 (dense,bm25); got {text!r}"
        ) from exc


def _where(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f'--where must be JSON, e.g. \'{{"lang": "en"}}\'; got {text!r}') from exc


def _source(score: SourceScore | None) -> dict[str, Any] | None:
    return {"rank": score.rank, "score": float(score.score)} if score is not None else None


def hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    """One result as ``--json`` prints it (scores as plain floats: they may be numpy's)."""
    return {
        "rank": rank,
        "id": hit.id,
        "score": float(hit.score),
        "score_space": hit.score_space,
        "text": hit.text,
        "metadata": hit.metadata,
        "dense": _source(hit.dense),
        "bm25": _source(hit.bm25),
        "rerank": float(hit.rerank_score) if hit.rerank_score is not None else None,
    }


def run(args: argparse.Namespace) -> int:
    where = _where(args.where)
    weights = _weights(args.weights)
    index, _ = open_index(args, must_exist=True)
    reranker = None
    if args.rerank is not None:  # --rerank alone (const "") asks for the default reranker
        name = args.rerank if args.rerank != "" else None
        reranker = load_reranker(name, **loading_options(args))
    started = time.perf_counter()
    hits = index.search(
        args.query,
        k=args.k,
        mode=args.mode,
        fusion=args.fusion,
        weights=weights,
        where=where,
        rerank=reranker if reranker is not None else False,
    )
    ms = (time.perf_counter() - started) * 1000
    if args.json:  # stdout is the array alone, [] when nothing matched
        print_json([hit_json(n, hit) for n, hit in enumerate(hits, start=1)])
        return 0
    if not hits:
        empty = " (the index is empty: run jinarag index first)" if index.count() == 0 else ""
        print(f"no results{empty}")
        return 0
    print(f"{len(hits)} results in {ms:.0f} ms; score = {hits[0].score_space}")
    print(f"{'#':>3}  {'score':>8}  {'dense':>5}  {'bm25':>5}  {'id':<24}  text")
    for n, hit in enumerate(hits, start=1):
        dense = str(hit.dense.rank) if hit.dense is not None else "-"
        bm25 = str(hit.bm25.rank) if hit.bm25 is not None else "-"
        text = " ".join(hit.text.split())
        text = text if len(text) <= 70 else text[:69] + "…"
        shown = hit.id if len(hit.id) <= 24 else "…" + hit.id[-23:]  # a path's tail says most
        print(f"{n:>3}  {hit.score:8.4f}  {dense:>5}  {bm25:>5}  {shown:<24}  {text}")
    return 0
