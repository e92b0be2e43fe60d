"""rank-bm25 against bm25s behind jinarag's BM25Index, on a synthetic corpus.

    python benchmarks/bm25_backends.py                 # 100k documents
    python benchmarks/bm25_backends.py --docs 20000    # quicker

The corpus is seeded and Zipf-distributed (a vocabulary of 50k words, 40-160 words per
document); queries take 2-6 distinct words (not the 20 most common) from a random document,
so each has real matches. Reported per backend and BM25 variant: build time (after
tokenisation, which both share), query latency (p50 / p95, top 10) and top-10 agreement with
rank-bm25 (mean overlap of the two top-10 sets). ``okapi`` maps to bm25s' Robertson scoring,
whose idf floors at 0 rather than at epsilon × the mean idf; ``bm25l`` differs more, because
rank-bm25's BM25L multiplies by the term frequency once more than the published formula.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from jinarag.retrieval.keyword.bm25 import BM25Index


def make_corpus(n_docs: int, vocab: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks**1.05
    p /= p.sum()
    lengths = rng.integers(40, 161, size=n_docs)
    tokens = rng.choice(vocab, size=int(lengths.sum()), p=p)
    docs, start = [], 0
    for n in lengths:
        docs.append(words[tokens[start : start + n]].tolist())
        start += n
    return [f"d{i}" for i in range(n_docs)], docs


def make_queries(docs: list[list[str]], n: int, vocab: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    queries = []
    while len(queries) < n:
        doc = docs[int(rng.integers(len(docs)))]
        # Any word but the 20 most common (those act as stopwords).
        pool = sorted({w for w in doc if int(w[1:]) >= 20})
        if len(pool) >= 2:
            k = int(rng.integers(2, min(6, len(pool)) + 1))
            queries.append(" ".join(rng.choice(pool, size=k, replace=False)))
    return queries


def bench(backend: str, variant: str, ids, docs, queries, k: int) -> dict:
    index = BM25Index(variant, backend=backend)
    started = time.perf_counter()
    index.upsert_tokens(ids, docs)
    index.search(queries[0], k=k)  # the scorer is built on first use
    build = time.perf_counter() - started
    results, times = [], []
    for q in queries:
        t = time.perf_counter()
        results.append([d for d, _ in index.search(q, k=k)])
        times.append(time.perf_counter() - t)
    return {
        "build_s": build,
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": float(np.percentile(times, 95)) * 1000,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="okapi,bm25plus,bm25l")
    args = parser.parse_args(argv)

    try:
        import bm25s  # noqa: F401
    except ImportError:
        print("bm25s is not installed: pip install 'jinarag[fast-bm25]'", file=sys.stderr)
        return 1

    started = time.perf_counter()
    ids, docs = make_corpus(args.docs, args.vocab, args.seed)
    queries = make_queries(docs, args.queries, args.vocab, args.seed)
    n_tokens = sum(len(d) for d in docs)
    print(
        f"corpus: {args.docs} documents, {n_tokens} tokens, vocabulary {args.vocab}; "
        f"{len(queries)} queries, top {args.k} (generated in {time.perf_counter() - started:.1f}s)"
    )
    print("| variant | backend | build (s) | query p50 (ms) | query p95 (ms) | top-10 agreement |")
    print("|---|---|---:|---:|---:|---:|")
    for variant in args.variants.split(","):
        reference = bench("rank_bm25", variant, ids, docs, queries, args.k)
        fast = bench("bm25s", variant, ids, docs, queries, args.k)
        for name, r in (("rank_bm25", reference), ("bm25s", fast)):
            overlap = statistics.fmean(
                len(set(a) & set(b)) / max(len(a), 1)
                for a, b in zip(reference["results"], r["results"], strict=True)
            )
            print(
                f"| {variant} | {name} | {r['build_s']:.2f} | {r['p50_ms']:.2f} | "
                f"{r['p95_ms']:.2f} | {overlap:.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
