"""`jinarag index`, `jinarag search` and `jinarag eval`: the hybrid index from the command line.

    jinarag index docs/ notes.md corpus.jsonl --store ./jinarag-store
    jinarag search "how does a slipstream change lift?" --store ./jinarag-store --k 5
    jinarag eval tests/data/cranfield

Models: ``--model`` names the embedder (default: jina-embeddings-v2-small-en, or the bundled
all-MiniLM-L6-v2 when that cannot be had offline, with a note saying so). Use the same
embedder for ``index`` and ``search``: the collection refuses another one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinarag.errors import InputError

__all__ = ["add_parser"]

DEFAULT_STORE = "jinarag-store"
DEFAULT_COLLECTION = "jinarag"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``index``, ``search`` and ``eval`` subcommands."""
    index = subparsers.add_parser(
        "index", help="chunk, embed and store files in a hybrid (Chroma + BM25) index"
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (txt, md, jsonl)")
    _store_options(index)
    index.add_argument(
        "--chunk-tokens",
        type=int,
        help="tokens per chunk (default: the model's limit, at most 512)",
    )
    index.add_argument(
        "--overlap", type=int, help="tokens shared by consecutive chunks (default: 1/8 of a chunk)"
    )
    index.add_argument("--batch", type=int, default=1024, help="chunks written per step")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(handler=run_index)

    search = subparsers.add_parser("search", help="search a hybrid index and print a table")
    search.add_argument("query")
    _store_options(search)
    search.add_argument("--mode", default="hybrid", help="hybrid, dense or bm25")
    search.add_argument("--k", type=int, default=10, help="results to show")
    search.add_argument("--fusion", help="rrf, relative or dbsf (default: the index's, rrf)")
    search.add_argument("--weights", help="dense,bm25 fusion weights, e.g. 0.75,1")
    search.add_argument("--where", help='a Chroma metadata filter as JSON, e.g. \'{"lang": "en"}\'')
    search.add_argument(
        "--rerank",
        nargs="?",
        const="",
        metavar="MODEL",
        help="rerank the fused results (default model: Jina turbo, skipped if unavailable)",
    )
    search.set_defaults(handler=run_search)

    evaluate = subparsers.add_parser(
        "eval", help="nDCG@10 and Recall@100 of every search mode on a BEIR dataset folder"
    )
    evaluate.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    evaluate.add_argument("--model", help="embedder name, alias or path (default: Jina small)")
    evaluate.add_argument("--max-length", type=int, help="embedder token limit")
    evaluate.add_argument(
        "--reranker", help="reranker for the 'hybrid + rerank' row (default: Jina turbo)"
    )
    evaluate.add_argument("--no-rerank", action="store_true", help="leave the rerank row out")
    evaluate.add_argument(
        "--store", type=Path, help="keep the index here and reuse it (default: in memory)"
    )
    evaluate.add_argument(
        "--queries", choices=("all", "odd", "even"), default="all", help="which queries to score"
    )
    evaluate.add_argument("--limit", type=int, help="score only the first N of those queries")
    evaluate.set_defaults(handler=run_eval)


def _store_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", type=Path, help=f"index folder (default: ./{DEFAULT_STORE})")
    where.add_argument("--chroma-url", help="a Chroma server instead, e.g. http://127.0.0.1:8000")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="collection name")
    parser.add_argument("--model", help="embedder name, alias or path (default: Jina small)")


def _note(text: str | None) -> None:
    if text:
        print(f"note: {text}", file=sys.stderr)


def _open_index(args: argparse.Namespace, *, must_exist: bool) -> Any:
    from jinarag.inference.defaults import load_embedder
    from jinarag.retrieval.index import HybridIndex

    store = args.store if args.store is not None else Path(DEFAULT_STORE)
    if args.chroma_url is None and must_exist and not store.is_dir():
        raise InputError(
            f"no index at {str(store)!r}; build one first: jinarag index PATH --store {store}"
        )
    embedder, note = load_embedder(args.model)
    _note(note)
    if args.chroma_url is not None:
        # The BM25 snapshot still lives on this machine, in --store when given.
        return HybridIndex(
            args.store, url=args.chroma_url, collection=args.collection, embedder=embedder
        )
    return HybridIndex(store, collection=args.collection, embedder=embedder)


def _groups(records: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive records, ``size`` or a few more per group, never splitting a document."""
    group: list[Any] = []
    for i, record in enumerate(records):
        group.append(record)
        last_of_doc = (
            i + 1 == len(records) or records[i + 1].metadata["doc_id"] != record.metadata["doc_id"]
        )
        if len(group) >= size and last_of_doc:
            yield group
            group = []
    if group:
        yield group


def run_index(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from jinarag.retrieval.ingest import chunk_documents, find_files, read_documents

    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    files = find_files(args.paths)  # fail on a bad path before loading any model
    if not files:
        raise InputError(f"no .txt, .md or .jsonl files under {', '.join(args.paths)}")
    started = time.perf_counter()
    index = _open_index(args, must_exist=False)
    embedder = index.embedder
    specials = embedder.tokenizer.count_tokens("")
    size = (
        args.chunk_tokens
        if args.chunk_tokens is not None
        else min(512, embedder.max_length) - specials
    )
    if size + specials > embedder.max_length:
        raise InputError(
            f"--chunk-tokens {size} does not fit {embedder.name} (max {embedder.max_length} tokens "
            f"including {specials} special ones); use at most {embedder.max_length - specials}"
        )
    overlap = args.overlap if args.overlap is not None else size // 8
    docs = list(read_documents(files))
    records = list(chunk_documents(docs, embedder.tokenizer.token_offsets, size, overlap))
    bar = tqdm(total=len(records), desc="indexing", unit="chunk", disable=args.quiet)
    removed = 0
    try:
        for group in _groups(records, args.batch):
            ids = index.add(
                [r.text for r in group],
                ids=[r.id for r in group],
                metadatas=[r.metadata for r in group],
            )
            # A document re-indexed into fewer chunks leaves old chunks behind: remove them.
            doc_ids = sorted({r.metadata["doc_id"] for r in group})
            old = {h.id for h in index.get(where={"doc_id": {"$in": doc_ids}})} - set(ids)
            if old:
                index.delete(sorted(old))
                removed += len(old)
            bar.update(len(group))
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    where = args.chroma_url if args.chroma_url is not None else str(index.path)
    print(
        f"indexed {len(records)} chunks from {len(docs)} documents in {len(files)} files "
        f"into {where} (collection {args.collection!r}) in {seconds:.1f}s"
        + (f"; removed {removed} stale chunks" if removed else "")
    )
    print(f"the index holds {index.count()} records; embedder {embedder.name}")
    return 0


def _weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError as exc:
        raise InputError(
            f"--weights must be two numbers like 0.75,1 (dense,bm25); got {text!r}"
        ) from exc


def run_search(args: argparse.Namespace) -> int:
    where = None
    if args.where is not None:
        try:
            where = json.loads(args.where)
        except ValueError as exc:
            raise InputError(
                f'--where must be JSON, e.g. \'{{"lang": "en"}}\'; got {args.where!r}'
            ) from exc
    weights = _weights(args.weights)
    index = _open_index(args, must_exist=True)
    reranker = None
    if args.rerank is not None:
        from jinarag.inference.defaults import load_reranker

        reranker, note = load_reranker(args.rerank if args.rerank else None)
        _note(note)
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


def run_eval(args: argparse.Namespace) -> int:
    from jinarag.evaluation.evaluate import (
        build_index,
        evaluate,
        format_table,
        load_beir,
        select_queries,
    )
    from jinarag.inference.defaults import load_embedder, load_reranker

    dataset = load_beir(args.dataset)
    qids = select_queries(dataset, args.queries)
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit must be at least 1, got {args.limit}")
        qids = qids[: args.limit]
    options = {"max_length": args.max_length} if args.max_length is not None else {}
    embedder, note = load_embedder(args.model, **options)
    _note(note)
    reranker = None
    if not args.no_rerank:
        reranker, note = load_reranker(args.reranker)
        _note(note)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        index = build_index(dataset, embedder, args.store, show_progress=sys.stderr.isatty())
    if caught:  # long documents are cut at the model's limit: say so once
        _note(f"documents longer than {embedder.max_length} tokens were truncated")
    print(
        f"{dataset.name}: {len(dataset.corpus)} documents indexed in "
        f"{time.perf_counter() - started:.0f}s, {len(qids)} {args.queries} queries; embedder "
        f"{embedder.name} (max {embedder.max_length} tokens)"
        + (f"; reranker {reranker.name}" if reranker is not None else "")
    )
    rows = evaluate(index, dataset, query_ids=qids, reranker=reranker)
    print(format_table(rows))
    return 0
