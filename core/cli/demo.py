"""`jinarag demo`: embed a small corpus, retrieve by cosine, rerank, print the ranking.

The corpus is 300 abstracts of the Cranfield aeronautics collection, shipped with the package,
read by the same reader as ``jinarag index`` (so a title goes in front of its text the same way).
"""

from __future__ import annotations

import argparse
import time
import warnings
from importlib import resources
from pathlib import Path

from jinarag.cli.common import (
    add_backend_option,
    add_model_option,
    add_reranker_option,
    count,
    load_embedder,
    load_reranker,
    loading_options,
    note,
)
from jinarag.errors import TruncationWarning
from jinarag.retrieval.ingest.readers import Document, read_documents, read_file

__all__ = ["DEMO_QUERIES", "MAKE_A_RERANKER", "add_parser", "load_corpus", "run"]

DEMO_QUERIES = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft?",
    "what problems of heat conduction in composite slabs have been solved so far?",
    "how does a propeller slipstream change the lift of a wing?",
)

# Offline there is no Jina reranker to download: how to make one from the shipped MiniLM.
MAKE_A_RERANKER = (
    "to rerank offline, make a reranker from the shipped MiniLM weights (docs/training.md): "
    "jinarag train-reranker DATASET_DIR --base minilm --titles --out my-reranker; jinarag "
    "distill --teacher my-reranker --student-layers 2 --dataset DATASET_DIR --titles --out "
    "my-turbo; then "
    "jinarag demo --reranker my-turbo"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="embed, retrieve and rerank over a small bundled corpus"
    )
    add_model_option(parser)
    add_backend_option(parser)
    add_reranker_option(parser)
    parser.add_argument("--query", action="append", help="a query (repeatable)")
    parser.add_argument(
        "--corpus",
        type=Path,
        help="a JSONL file of {id, title, text} records (or .txt/.md files, or a folder of them)",
    )
    parser.add_argument("-k", "--top-k", type=count, default=5, help="results shown per query")
    parser.add_argument("--candidates", type=count, default=20, help="retrieved before reranking")
    parser.set_defaults(handler=run)


def load_corpus(path: Path | None) -> list[Document]:
    """The documents at ``path``, or the bundled Cranfield abstracts when it is None."""
    if path is not None:
        return list(read_documents([path]))
    bundled = resources.files("jinarag").joinpath("data/demo_corpus.jsonl")
    with resources.as_file(bundled) as file:
        return list(read_file(file))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    started = time.perf_counter()
    embedder = load_embedder(args.model, **loading_options(args))
    reranker = load_reranker(args.reranker, **loading_options(args))
    if reranker is None:
        note(MAKE_A_RERANKER)
    load_seconds = time.perf_counter() - started
    print(f"embedder: {embedder.name} (dim {embedder.dim}, max {embedder.max_length} tokens)")
    print(
        f"reranker: {reranker.name if reranker else 'none'}  [models loaded in {load_seconds:.1f}s]"
    )

    docs = load_corpus(args.corpus)
    texts = [doc.text for doc in docs]
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    print(f"embedded {len(texts)} documents in {seconds:.2f}s ({len(texts) / seconds:.0f} docs/s)")
    truncated = [w.message for w in caught if issubclass(w.category, TruncationWarning)]
    if truncated:  # long abstracts are cut to the model's limit: say so once, briefly
        note(f"{truncated[0].summary}.")

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
            doc = docs[index]
            title = str(doc.metadata.get("title") or doc.text)  # untitled: show the text
            print(f"  {rank:>4}  {score:7.4f}  {doc.id:>5}  {title[:70]}")
        print(f"  (scores: {rows[0][2] if rows else 'none'})")
    return 0
