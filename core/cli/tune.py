"""`jinarag tune`: fit the fusion settings to your own judged queries and save them where
:class:`jinarag.HybridIndex` (and so `jinarag search`) picks them up.

Examples::

    jinarag tune my-judged-data --store ./store   # writes ./store/jinarag-fusion.json
    jinarag tune my-judged-data --output fusion.json   # in memory, settings to a file

DATASET_DIR is a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``). Its
documents are added to the store's collection when they are not all there yet (unchanged
records are never written again), so a store made with ``jinarag index corpus.jsonl`` is used
as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jinarag.cli.common import (
    add_backend_option,
    add_max_length_option,
    add_model_option,
    count,
    load_embedder,
    loading_options,
    note,
)
from jinarag.errors import InputError
from jinarag.evaluation import QUERY_SETS  # light: the index and models load in run()

__all__ = ["add_parser", "run"]

FEW_QUERIES = 20  # below this, a note warns that the settings may fit these queries only


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="fit fusion settings to your judged queries (a BEIR folder) and save them for "
        "the store",
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    parser.add_argument(
        "--store",
        type=Path,
        help="the store to tune (default: an in-memory index); the settings go to "
        "STORE/jinarag-fusion.json, which HybridIndex and `jinarag search` read",
    )
    parser.add_argument(
        "--collection", default="jinarag", help="the collection in the store (default: jinarag)"
    )
    parser.add_argument("--output", type=Path, help="write the settings here instead")
    add_model_option(parser)
    add_max_length_option(parser)
    add_backend_option(parser)
    parser.add_argument(
        "--queries", choices=QUERY_SETS, default="all", help="which judged queries to fit on"
    )
    parser.add_argument("--limit", type=count, help="fit on the first N of those queries only")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jinarag.evaluation import (
        CANDIDATES_GRID,
        format_sweep,
        load_beir,
        select_queries,
        single_sources,
        source_lists,
        sweep,
    )
    from jinarag.retrieval.index import HybridIndex
    from jinarag.retrieval.search.settings import (
        FUSION_FILE,
        FusionSettings,
        write_fusion_settings,
    )

    if args.output is None and args.store is None:
        raise InputError(
            "jinarag tune needs somewhere to write the settings: --store DIR (they go to "
            f"DIR/{FUSION_FILE}) or --output FILE"
        )
    output = args.output if args.output is not None else args.store / FUSION_FILE
    dataset = load_beir(args.dataset)
    qids = select_queries(dataset, args.queries)
    if args.limit is not None:
        qids = qids[: args.limit]
    if not qids:
        raise InputError(f"no judged queries to tune on in {str(args.dataset)!r}")
    options = {"max_length": args.max_length} if args.max_length is not None else {}
    embedder = load_embedder(args.model, **options, **loading_options(args))
    index = HybridIndex(args.store, collection=args.collection, embedder=embedder)
    ids, texts, metas = dataset.records()
    if not set(ids) <= set(index.bm25_index.ids):
        print(f"tune: indexing {len(ids)} documents", file=sys.stderr, flush=True)
        index.add(texts, ids=ids, metadatas=metas, show_progress=sys.stderr.isatty())
    print(f"tune: candidate lists of {len(qids)} queries", file=sys.stderr, flush=True)
    lists = source_lists(index, dataset, qids, max(CANDIDATES_GRID))
    result = sweep(lists, dataset, qids)
    best = result.best()
    chosen = result.defaults(best["fusion"])
    settings = FusionSettings(
        best["fusion"], chosen["weights"], chosen["rrf_k"], chosen["candidates"]
    )
    singles = single_sources(lists, dataset, qids)
    write_fusion_settings(
        output,
        settings,
        {
            "dataset": str(args.dataset),
            "queries": f"{len(qids)} {args.queries}",
            "embedder": str(embedder.name),
            "ndcg10": best["ndcg10"],
            "single_sources_ndcg10": singles,
        },
    )
    print(format_sweep(result, top=5))
    print(
        f"\nwrote {output}: fusion {settings.fusion}, weights (dense, bm25) "
        f"{settings.weights[settings.fusion]}, rrf k {settings.rrf_k}, candidates "
        f"{settings.candidates}; nDCG@10 {best['ndcg10']:.4f} on {len(qids)} queries "
        f"(dense {singles['dense']:.4f}, bm25 {singles['bm25']:.4f})"
    )
    if len(qids) < FEW_QUERIES:
        note(
            f"fitted on {len(qids)} queries only: the settings may suit these queries and no "
            "others; judge more queries, or fit on --queries odd and check with "
            "`jinarag eval DATASET_DIR --queries even`"
        )
    return 0
