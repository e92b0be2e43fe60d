"""`jinarag demo`: embed a small corpus, retrieve by cosine, rerank, print the ranking.

The corpus is 300 abstracts of the Cranfield aeronautics collection, shipped with the package.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from jinarag.inference.defaults import load_embedder, load_reranker

DEMO_QUERIES = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft?",
    "what problems of heat conduction in composite slabs have been solved so far?",
    "how does a propeller slipstream change the lift of a wing?",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="embed, retrieve and rerank over a small bundled corpus"
    )
    parser.add_argument("--model", help="embedder name, alias or path (default: Jina small)")
    parser.add_argument("--reranker", help="reranker name, alias or path (default: Jina turbo)")
    parser.add_argument("--query", action="append", help="a query (repeatable)")
    parser.add_argument("--corpus", type=Path, help="a JSONL file of {id, title, text} records")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="results shown per query")
    parser.add_argument("--candidates", type=int, default=20, help="retrieved before reranking")
    parser.set_defaults(handler=run)


def load_corpus(path: Path | None) -> list[dict]:
    if path is None:
        text = resources.files("jinarag").joinpath("data/demo_corpus.jsonl").read_text("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    embedder, embedder_note = load_embedder(args.model)
    reranker, reranker_note = load_reranker(args.reranker)
    for note in (embedder_note, reranker_note):
        if note:
            print(f"note: {note}")
    load_seconds = time.perf_counter() - started
    print(f"embedder: {embedder.name} (dim {embedder.dim}, max {embedder.max_length} tokens)")
    print(
        f"reranker: {reranker.name if reranker else 'none'}  [models loaded in {load_seconds:.1f}s]"
    )

    records = load_corpus(args.corpus)
    texts = [f"{r.get('title', '')}. {r['text']}".strip(". ") for r in records]
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    print(f"embedded {len(texts)} documents in {seconds:.2f}s ({len(texts) / seconds:.0f} docs/s)")
    if caught:  # long abstracts are cut to the model's limit: say so once, briefly
        print(f"note: {str(caught[0].message).split(' (indices')[0]}.")

    for query in args.query if args.query is not None else DEMO_QUERIES:
        started = time.perf_counter()
        similarities = vectors @ embedder.embed_query(query)
        candidates = np.argsort(-similarities, kind="stable")[: args.candidates]
        retrieve_ms = (time.perf_counter() - started) * 1000
        if reranker is not None:
            started = time.perf_counter()
            ranked = reranker.rank(query, [texts[i] for i in candidates], top_n=args.top_k)
            rerank_ms = (time.perf_counter() - started) * 1000
            rows = [(candidates[r.index], r.score, "relevance") for r in ranked]
            timing = (
                f"retrieve {retrieve_ms:.0f} ms, rerank {len(candidates)} in {rerank_ms:.0f} ms"
            )
        else:
            rows = [(i, float(similarities[i]), "cosine") for i in candidates[: args.top_k]]
            timing = f"retrieve {retrieve_ms:.0f} ms"
        print(f"\nquery: {query}   [{timing}]")
        print(f"  {'rank':>4}  {'score':>7}  {'id':>5}  title")
        for rank, (index, score, _space) in enumerate(rows, start=1):
            title = records[index].get("title") or records[index]["text"]
            print(f"  {rank:>4}  {score:7.4f}  {records[index]['id']:>5}  {title[:70]}")
        print(f"  (scores: {rows[0][2] if rows else 'none'})")
    return 0
