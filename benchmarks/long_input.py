"""Long inputs on CPU: blocked attention beside a materialised ALiBi bias, time and peak memory.

One text of 2048, 4096 and 8192 tokens (``--tokens``) is embedded with a random checkpoint
shaped like jina-embeddings-v2-base-en (12 layers, hidden 768, 12 heads, intermediate 3072,
GEGLU, ALiBi), in two ways:

- ours: ``jinarag.Embedder.embed`` as shipped (attention ``"sdpa"`` in query blocks, so the
  bias and the score matrix never hold more than a block of queries at once);
- reference: the same weights and path with a single block, i.e. plain SDPA with the full
  ``(1, heads, S, S)`` ALiBi bias materialised for the forward pass, the way Jina's remote code
  computes it (which additionally keeps an 8192 x 8192 buffer from load time; not counted).

Each configuration runs in a fresh Python process, so each peak RSS (``ru_maxrss``, checked
against the kernel's ``VmHWM``) is its own. The text is random words of a word-per-token
vocabulary (no special tokens), and each process embeds it once to warm up, then once timed.
The script prints a table and, for 8192 tokens, PASS/FAIL lines: our peak RSS at most 1.5 GB,
our time at most 1.2 x the reference's. The exit status is 0 when every check passes.

Like ``peak_memory.py``, the script itself never imports torch: Linux carries ``ru_maxrss``
across ``exec``, so a child started from a large parent would report the parent's peak.

Usage:
    .venv/bin/python benchmarks/long_input.py [--tokens 2048 4096 8192] [--threads N]
        [--budget-gb 1.5] [--max-time-ratio 1.2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # peak_memory's checkpoint builder (torch-free until called)

GB = 1e9
CHECKED_TOKENS = 8192  # the length the PASS/FAIL lines judge

# Runs in a fresh process. argv: checkpoint, tokens, "ours"|"reference", threads (0 = default).
CHILD = """
import json, random, resource, sys, time
import torch
import jinarag
from jinarag.models.encoder import TokenLayout

path, tokens, way, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
if way == "reference":
    TokenLayout.BLOCK_BYTES = 1 << 62  # one query block: the whole (1, N, S, S) bias at once
embedder = jinarag.Embedder.from_pretrained(
    path, device="cpu", dtype="float32", max_length=tokens, num_threads=threads or None
)
# One vocabulary word per token ("w123"), drawn at random, plus [CLS] and [SEP].
words = random.Random(tokens).choices(range(20000), k=tokens - 2)
text = " ".join(f"w{i}" for i in words)
count = embedder.tokenizer.count_tokens(text)
embedder.embed([text])  # warm-up: allocator and kernel selection
start = time.perf_counter()
vector = embedder.embed([text])
seconds = time.perf_counter() - start
with open("/proc/self/status") as f:
    hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")]
print(json.dumps({
    "tokens": count,
    "seconds": seconds,
    "peak_rss_kib": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, *hwm),
    "threads": torch.get_num_threads(),
    "norm": float((vector ** 2).sum()),
}))
"""


def _child(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the child process {args[:2]} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]


def measure(checkpoint: Path, tokens: int, way: str, threads: int) -> dict:
    return json.loads(_child("-c", CHILD, str(checkpoint), str(tokens), way, str(threads)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--budget-gb", type=float, default=1.5, help="our peak RSS at 8192")
    parser.add_argument("--max-time-ratio", type=float, default=1.2, help="ours / reference")
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_only is not None:  # the builder child
        from peak_memory import build_base_shaped_checkpoint

        print(build_base_shaped_checkpoint(args.build_only))
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        target = args.keep if args.keep is not None else Path(tmp) / "base-shaped"
        started = time.perf_counter()
        checkpoint = Path(_child(__file__, "--build-only", str(target)))
        print(
            f"checkpoint: jina-embeddings-v2-base-en shape, random weights "
            f"(built in {time.perf_counter() - started:.1f} s); cpu float32, "
            f"{args.threads or os.cpu_count()} threads, one text per configuration"
        )
        header = (
            f"{'tokens':>7} {'ours s':>9} {'ours peak GB':>13} {'ref s':>9} "
            f"{'ref peak GB':>12} {'time ours/ref':>14}"
        )
        print(header)
        for tokens in args.tokens:
            ours = measure(checkpoint, tokens, "ours", args.threads)
            ref = measure(checkpoint, tokens, "reference", args.threads)
            assert ours["tokens"] == ref["tokens"] == tokens, (ours, ref)
            assert abs(ours["norm"] - 1.0) < 1e-3, ours  # a real, normalised embedding
            rows.append((tokens, ours, ref))
            print(
                f"{tokens:>7} {ours['seconds']:>9.2f} {ours['peak_rss_kib'] * 1024 / GB:>13.2f} "
                f"{ref['seconds']:>9.2f} {ref['peak_rss_kib'] * 1024 / GB:>12.2f} "
                f"{ours['seconds'] / ref['seconds']:>13.2f}x"
            )

    checked = [row for row in rows if row[0] == CHECKED_TOKENS]
    if not checked:
        print(f"no PASS/FAIL: the checks are for {CHECKED_TOKENS} tokens (add it to --tokens)")
        return 0
    _, ours, ref = checked[0]
    peak = ours["peak_rss_kib"] * 1024 / GB
    ratio = ours["seconds"] / ref["seconds"]
    checks = [
        (peak <= args.budget_gb, f"peak RSS at {CHECKED_TOKENS} tokens {peak:.2f} GB", "GB"),
        (ratio <= args.max_time_ratio, f"time at {CHECKED_TOKENS} tokens {ratio:.2f}x ref", "x"),
    ]
    limits = [args.budget_gb, args.max_time_ratio]
    for (ok, what, unit), limit in zip(checks, limits, strict=True):
        print(f"{'PASS' if ok else 'FAIL'}: {what} ({'<=' if ok else '>'} {limit} {unit})")
    return 0 if all(ok for ok, _, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
