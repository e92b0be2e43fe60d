"""`jinarag eval`: retrieval quality of every search mode on BEIR dataset folders, or with
``--tune`` the fusion sweep that chose the index's defaults.

Examples::

    jinarag eval tests/data/cranfield                    # nDCG@10, Recall@100, p50 per mode
    jinarag eval tests/data/cranfield --queries even     # the half not used for tuning
    jinarag eval tests/data/cranfield tests/data/cacm --tune   # the worst-case sweep, odd queries
    jinarag eval tests/data/cacm --format json --output cacm.json
    jinarag eval tests/data/cranfield tests/data/cacm --chart quality.svg   # a bar chart too

Progress (a line per dataset and configuration, and a bar while the corpus is indexed, hidden
by ``--quiet``) goes to stderr, terminal or not; texts cut at the models' token limits are
said once per dataset, not per query; the result goes to stdout, or to ``--output``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinarag.cli.common import (
    add_backend_option,
    add_max_length_option,
    add_model_option,
    add_reranker_option,
    count,
    load_embedder,
    load_reranker,
    loading_options,
    note,
)
from jinarag.errors import InputError, TruncationWarning
from jinarag.evaluation import QUERY_SETS  # light: the index and models load in run()

if TYPE_CHECKING:
    from jinarag.evaluation import Dataset, Row
    from jinarag.inference.embedder import Embedder
    from jinarag.inference.reranker import Reranker
    from jinarag.retrieval.index import HybridIndex

__all__ = ["FORMATS", "add_parser", "run"]

FORMATS = ("md", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="nDCG@10 and Recall@100 of every search mode on BEIR dataset folders "
        "(--tune: the fusion sweep)",
    )
    parser.add_argument("dataset", type=Path, nargs="+", metavar="DATASET_DIR")
    add_model_option(parser)
    add_max_length_option(parser)
    add_backend_option(parser)
    add_reranker_option(parser, help="reranker for the 'hybrid + rerank' row (default: Jina turbo)")
    parser.add_argument("--no-rerank", action="store_true", help="leave the rerank row out")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="sweep fusion weights, RRF k and candidate counts instead, and print the defaults "
        "they imply (no reranker); with several datasets, settings rank by their worst case",
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="keep the index here and reuse it (default: in memory); with several datasets, "
        "one subfolder per dataset",
    )
    parser.add_argument(
        "--queries",
        choices=QUERY_SETS,
        help="which queries to score (default: all; odd with --tune)",
    )
    parser.add_argument("--limit", type=count, help="score only the first N of those queries")
    parser.add_argument(
        "--format", choices=FORMATS, default="md", help="Markdown tables (default) or JSON"
    )
    parser.add_argument("--output", type=Path, help="write the result to this file (not stdout)")
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="FILE.svg",
        help="also draw nDCG@10 and Recall@100 per method (p50 latency beside) as an SVG chart",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar while the corpus is indexed"
    )
    parser.set_defaults(handler=run)


def _progress(text: str) -> None:
    print(f"eval: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _truncations(said: Callable[[int], str]) -> Iterator[None]:
    """Count the TruncationWarnings raised inside (one per embedding or reranking call) and say
    them in one note at the end, ``said(count)``; other warnings are shown as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        yield
    count = 0
    for w in caught:
        if issubclass(w.category, TruncationWarning):
            count += 1
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    if count:
        note(said(count))


def _open(dataset: Dataset, embedder: Embedder, store: Path | None, quiet: bool) -> HybridIndex:
    from jinarag.evaluation import build_index

    _progress(f"{dataset.name}: indexing {len(dataset.corpus)} documents")
    cut = f"{dataset.name}: documents longer than {embedder.max_length} tokens were truncated"
    with _truncations(lambda _: cut):
        return build_index(dataset, embedder, store, show_progress=not quiet)


def _evaluate(
    index: HybridIndex, dataset: Dataset, qids: list[str], reranker: Reranker | None
) -> list[Row]:
    from jinarag.evaluation import evaluate

    def progress(label: str) -> None:
        _progress(f"{dataset.name}: {label}")

    def cut(count: int) -> str:
        limit = reranker.max_length if reranker is not None else "its"
        return (
            f"{dataset.name}: the reranker truncated query-document pairs longer than {limit} "
            f"tokens for {count} of {len(qids)} queries (it reads the start of each document)"
        )

    with _truncations(cut):
        return evaluate(index, dataset, query_ids=qids, reranker=reranker, progress=progress)


def run(args: argparse.Namespace) -> int:
    from jinarag.evaluation import (
        CANDIDATES_GRID,
        format_sweep,
        format_table,
        load_beir,
        select_queries,
        source_lists,
        sweep,
        sweep_worst_case,
    )

    if args.chart is not None and args.tune:
        raise InputError("--chart draws the eval table; leave it out with --tune")
    if args.chart is not None and args.chart.suffix.lower() != ".svg":
        raise InputError(f"--chart writes SVG: name the file *.svg, got {str(args.chart)!r}")
    datasets = [load_beir(path) for path in args.dataset]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise InputError(f"the dataset folders must have different names, got {names}")
    which = args.queries if args.queries is not None else ("odd" if args.tune else "all")
    options = {"max_length": args.max_length} if args.max_length is not None else {}
    embedder = load_embedder(args.model, **options, **loading_options(args))
    reranker = (
        None
        if args.tune or args.no_rerank
        else load_reranker(args.reranker, **loading_options(args))
    )
    several = len(datasets) > 1
    headers: list[str] = []
    result: dict[str, Any] = {}
    tables: list[str] = []
    runs = {}
    charted: dict[str, list[Any]] = {}
    for dataset in datasets:
        qids = select_queries(dataset, which)
        if args.limit is not None:
            qids = qids[: args.limit]
        store = args.store / dataset.name if several and args.store is not None else args.store
        started = time.perf_counter()
        index = _open(dataset, embedder, store, args.quiet)
        header = (
            f"{dataset.name}: {len(dataset.corpus)} documents indexed in "
            f"{time.perf_counter() - started:.0f}s, {len(qids)} {which} queries; embedder "
            f"{embedder.name} (max {embedder.max_length} tokens)"
            + (f"; reranker {reranker.name}" if reranker is not None else "")
        )
        headers.append(header)
        if args.tune:
            _progress(f"{dataset.name}: candidate lists of {len(qids)} queries")
            runs[dataset.name] = (
                source_lists(index, dataset, qids, max(CANDIDATES_GRID)),
                dataset,
                qids,
            )
            continue

        rows = _evaluate(index, dataset, qids, reranker)
        result[dataset.name] = {
            "summary": header,
            "queries": which,
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        tables.append(header + "\n" + format_table(rows))
        charted[dataset.name] = rows
    if args.tune:
        _progress("sweeping fusion settings")
        if several:
            swept = sweep_worst_case(runs)
        else:
            (lists, dataset, qids), *_ = runs.values()
            swept = sweep(lists, dataset, qids)
        defaults = swept.defaults(swept.best()["fusion"])
        result = {"summary": headers, "queries": which, "defaults": defaults, "rows": swept.rows}
        tables.append("\n".join(headers) + "\n" + format_sweep(swept) + f"\n\ndefaults: {defaults}")
    if args.chart is not None:
        from jinarag.evaluation import svg_chart

        args.chart.write_text(svg_chart(charted), encoding="utf-8")
        _progress(f"wrote {args.chart}")
    text = json.dumps(result, indent=2) if args.format == "json" else "\n\n".join(tables)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
        _progress(f"wrote {args.output}")
    else:
        print(text)
    return 0
