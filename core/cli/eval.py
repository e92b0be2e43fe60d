"""`jinarag eval`: retrieval quality of every search mode on a BEIR dataset folder, or with
``--tune`` the fusion sweep that chose the index's defaults.

Examples::

    jinarag eval tests/data/cranfield                    # nDCG@10, Recall@100, p50 per mode
    jinarag eval tests/data/cranfield --queries even     # the half not used for tuning
    jinarag eval tests/data/cranfield --tune             # the sweep, on the odd queries
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from jinarag.cli.common import (
    add_max_length_option,
    add_model_option,
    add_reranker_option,
    count,
    load_embedder,
    load_reranker,
    note,
)
from jinarag.errors import TruncationWarning
from jinarag.evaluation import QUERY_SETS  # light: the index and models load in run()

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="nDCG@10 and Recall@100 of every search mode on a BEIR dataset folder "
        "(--tune: the fusion sweep)",
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    add_model_option(parser)
    add_max_length_option(parser)
    add_reranker_option(parser, help="reranker for the 'hybrid + rerank' row (default: Jina turbo)")
    parser.add_argument("--no-rerank", action="store_true", help="leave the rerank row out")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="sweep fusion weights, RRF k and candidate counts instead, and print the defaults "
        "they imply (no reranker)",
    )
    parser.add_argument(
        "--store", type=Path, help="keep the index here and reuse it (default: in memory)"
    )
    parser.add_argument(
        "--queries",
        choices=QUERY_SETS,
        help="which queries to score (default: all; odd with --tune)",
    )
    parser.add_argument("--limit", type=count, help="score only the first N of those queries")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.evaluation import (
        CANDIDATES_GRID,
        build_index,
        evaluate,
        format_sweep,
        format_table,
        load_beir,
        select_queries,
        source_lists,
        sweep,
    )

    dataset = load_beir(args.dataset)
    which = args.queries if args.queries is not None else ("odd" if args.tune else "all")
    qids = select_queries(dataset, which)
    if args.limit is not None:
        qids = qids[: args.limit]
    options = {"max_length": args.max_length} if args.max_length is not None else {}
    embedder = load_embedder(args.model, **options)
    reranker = None if args.tune or args.no_rerank else load_reranker(args.reranker)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        index = build_index(dataset, embedder, args.store, show_progress=sys.stderr.isatty())
    if any(issubclass(w.category, TruncationWarning) for w in caught):  # cut at max_length
        note(f"documents longer than {embedder.max_length} tokens were truncated")
    print(
        f"{dataset.name}: {len(dataset.corpus)} documents indexed in "
        f"{time.perf_counter() - started:.0f}s, {len(qids)} {which} queries; embedder "
        f"{embedder.name} (max {embedder.max_length} tokens)"
        + (f"; reranker {reranker.name}" if reranker is not None else "")
    )
    if args.tune:
        result = sweep(source_lists(index, dataset, qids, max(CANDIDATES_GRID)), dataset, qids)
        print(format_sweep(result))
        print(f"\ndefaults: {result.defaults()}")
    else:
        print(format_table(evaluate(index, dataset, query_ids=qids, reranker=reranker)))
    return 0
