"""jina-embeddings-v3's shape on CPU: jinarag's Embedder beside transformers' own
``JinaEmbeddingsV3Model``, measured in one run.

A random checkpoint in the real layout and at the real size (hidden 1024, 16 heads, 24 layers,
intermediate 4096, rotary positions, LoRA of rank 4 on every linear and embedding for the five
tasks; the vocabulary of the test tokenizer, since the weights cannot be downloaded here) is
built with ``tests/tiny_xlmr_checkpoints.py``. Both sides embed the same Cranfield abstracts as
documents (task ``retrieval.passage``, its instruction leading each text, as the model's own
``encode`` does), truncated to ``--max-length`` tokens, in batches of ``--batch-size``, with the
same torch thread count, mean-pooled and L2-normalised:

- reference: transformers' ``JinaEmbeddingsV3Model`` (tests/xlmr_reference.py) with the task's
  adapter merged into its weights once, before timing (faster than the model's own remote code,
  which applies LoRA on every forward), SDPA attention, texts sorted by length and each batch
  padded to its longest;
- jinarag: ``Embedder.from_pretrained(dir).embed_documents(texts)``.

Each side is warmed up, then the two alternate for ``--runs`` timed runs and the best of each
counts. The vectors are compared (smallest cosine between the sides), so neither side can be
faster by computing something else.

Usage:
    .venv/bin/python benchmarks/v3_cpu.py [--limit 48] [--max-length 512] [--runs 2]
        [--batch-size 16] [--threads N] [--layers 24]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint builder and the reference the tests use
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
TASK = "retrieval.passage"


def reference_embed(model, tokenizer, texts: list[str], batch_size: int) -> np.ndarray:
    """transformers' model the way its users run it at its fastest: length-sorted batches."""
    order = sorted(range(len(texts)), key=lambda i: len(tokenizer.encode(texts[i]).ids))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    pad = model.config.pad_token_id
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in rows])
            longest = max(len(e.ids) for e in encoded)
            ids = torch.full((len(rows), longest), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), longest), dtype=torch.long)
            for r, e in enumerate(encoded):
                ids[r, : len(e.ids)] = torch.tensor(e.ids)
                mask[r, : len(e.ids)] = 1
            states = model(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.numpy()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=48, help="Cranfield abstracts to embed")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=2, help="timed runs per side; best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--layers", type=int, default=24, help="24 is v3's depth")
    args = parser.parse_args(argv)

    from tiny_xlmr_checkpoints import V3_INSTRUCTIONS, build_v3
    from tokenizers import Tokenizer
    from xlmr_reference import hf_v3

    import jinarag

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with CORPUS.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][: args.limit]
    with tempfile.TemporaryDirectory(prefix="jinarag-v3-bench-") as tmp:
        directory = build_v3(
            Path(tmp) / "v3", hidden=1024, heads=16, layers=args.layers, intermediate=4096
        )
        embedder = jinarag.Embedder.from_pretrained(
            directory, device="cpu", dtype="float32", max_length=args.max_length
        )
        config = json.loads((directory / "config.json").read_text())
        reference = hf_v3(directory, config["lora_adaptations"].index(TASK), attention="sdpa")
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.enable_truncation(args.max_length)
        instructed = [V3_INSTRUCTIONS[TASK] + text for text in texts]
        tokens = sum(len(e.ids) for e in tokenizer.encode_batch(instructed))

        def ours() -> np.ndarray:
            return embedder.embed_documents(texts, batch_size=args.batch_size)

        def theirs() -> np.ndarray:
            return reference_embed(reference, tokenizer, instructed, args.batch_size)

        sides = {"jinarag": ours, "transformers JinaEmbeddingsV3Model": theirs}
        best = {name: float("inf") for name in sides}
        vectors = {name: run() for name, run in sides.items()}  # warm-up
        for _ in range(args.runs):
            for name, run in sides.items():
                start = time.perf_counter()
                vectors[name] = run()
                best[name] = min(best[name], time.perf_counter() - start)
    cosine = float(np.min(np.sum(vectors["jinarag"] * vectors[next(iter(list(sides)[1:]))], 1)))
    print(
        f"v3 shape ({args.layers} layers, hidden 1024), {len(texts)} texts, {tokens} tokens, "
        f"max_length {args.max_length}, batch {args.batch_size}, {torch.get_num_threads()} threads"
    )
    for name, seconds in best.items():
        print(f"  {name:40s} {seconds:8.2f} s  {tokens / seconds:8.0f} tokens/s")
    ratio = best["transformers JinaEmbeddingsV3Model"] / best["jinarag"]
    print(f"  jinarag / reference throughput: {ratio:.2f}x   smallest cosine: {cosine:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
