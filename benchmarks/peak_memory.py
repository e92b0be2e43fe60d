"""Peak memory of loading a jina-embeddings-v2-base-en-shaped checkpoint and embedding 512 tokens.

The reference implementation registers a ``[1, 12, 8192, 8192]`` float32 ALiBi buffer at load
time (3.2 GB) before it sees any input. We build the bias for the batch's actual length, so the
peak should stay near the size of the weights (about 0.55 GB for 137M float32 parameters).

The script writes a random checkpoint with the real shape (12 layers, hidden 768, 12 heads,
intermediate 3072, GEGLU, vocabulary 30528, a WordPiece tokenizer) to a temporary directory,
then, in a fresh Python process, loads it with ``jinarag.Embedder.from_pretrained`` and embeds
one 512-token text. It prints that process's peak RSS (``getrusage``'s ``ru_maxrss``, checked
against the kernel's ``VmHWM``) and a PASS/FAIL line against the 1.5 GB budget.

Linux carries ``ru_maxrss`` across ``exec``, so a child started by a big parent would inherit
the parent's peak: this script therefore builds the checkpoint in one child process and
measures in another, and itself never imports torch.

Usage:
    .venv/bin/python benchmarks/peak_memory.py [--tokens 512] [--budget-gb 1.5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint builder the tests use

GB = 1e9
BASE_EN = {"hidden": 768, "layers": 12, "heads": 12, "intermediate": 3072}
VOCAB_SIZE = 30528  # BERT's 30522, padded to a multiple of 64
MAX_POSITIONS = 8192

# Runs in the fresh process: nothing but the interpreter, jinarag and what it imports.
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
import jinarag
from tokenizers import Tokenizer

path, tokens = sys.argv[1], int(sys.argv[2])
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
embedder = jinarag.Embedder.from_pretrained(path, device="cpu")
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
loaded = time.perf_counter()
# One word per token: "w0 w1 ..." plus [CLS] and [SEP].
text = " ".join(f"w{i}" for i in range(tokens - 2))
count = len(Tokenizer.from_file(path + "/tokenizer.json").encode(text).ids)
vector = embedder.embed([text])
done = time.perf_counter()
with open("/proc/self/status") as f:
    hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")]
print(json.dumps({
    "vm_hwm_kib": hwm[0] if hwm else None,
    "tokens": count,
    "shape": list(vector.shape),
    "rss_after_import_kib": rss_import,
    "rss_after_load_kib": rss_load,
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "load_s": loaded - start,
    "embed_s": done - loaded,
}))
"""


def build_base_shaped_checkpoint(out: Path) -> Path:
    """A random checkpoint shaped like jina-embeddings-v2-base-en, written to ``out``."""
    from tiny_checkpoints import WORDPIECE_SPECIALS, Spec, build_checkpoint

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?()-'\"")
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    head = WORDPIECE_SPECIALS + chars + pieces
    vocab_words = VOCAB_SIZE - 6  # the real model has 6 rows of padding beyond its tokenizer
    vocab = head + [f"w{i}" for i in range(vocab_words - len(head))]
    spec = Spec(
        **BASE_EN,
        vocab_pad=VOCAB_SIZE - len(vocab),
        feed_forward_type="geglu",
        max_position_embeddings=MAX_POSITIONS,
        seed=0,
    )
    return build_checkpoint(spec, out, wordpiece_vocab=vocab)


def _child(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the child process {args[:2]} failed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def measure(checkpoint: Path, tokens: int) -> dict:
    return json.loads(_child("-c", CHILD, str(checkpoint), str(tokens)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=512, help="length of the embedded text")
    parser.add_argument("--budget-gb", type=float, default=1.5, help="PASS below this peak RSS")
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_only is not None:  # the builder child
        print(build_base_shaped_checkpoint(args.build_only))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        target = args.keep if args.keep is not None else Path(tmp) / "base-shaped"
        started = time.perf_counter()
        checkpoint = Path(_child(__file__, "--build-only", str(target)))
        weights = (checkpoint / "model.safetensors").stat().st_size
        print(
            f"checkpoint: {checkpoint} ({weights / GB:.2f} GB of float32 weights, "
            f"built in {time.perf_counter() - started:.1f} s)"
        )
        result = measure(checkpoint, args.tokens)

    assert result["tokens"] == args.tokens, result
    peak = result["peak_rss_kib"] * 1024
    heads = BASE_EN["heads"]
    reference_alibi = 1 * heads * MAX_POSITIONS * MAX_POSITIONS * 4
    print(f"embedded one text of {result['tokens']} tokens -> vector {tuple(result['shape'])}")
    print(f"RSS after `import jinarag`:  {result['rss_after_import_kib'] * 1024 / GB:.2f} GB")
    print(
        f"RSS after loading:          {result['rss_after_load_kib'] * 1024 / GB:.2f} GB "
        f"(load {result['load_s']:.1f} s)"
    )
    print(f"peak RSS (load + embed):    {peak / GB:.2f} GB (embed {result['embed_s']:.2f} s)")
    if result["vm_hwm_kib"] is not None:
        print(f"kernel high-water mark:     {result['vm_hwm_kib'] * 1024 / GB:.2f} GB (VmHWM)")
        peak = max(peak, result["vm_hwm_kib"] * 1024)
    print(
        f"reference ALiBi buffer alone: 1 x {heads} x {MAX_POSITIONS} x {MAX_POSITIONS} x 4 B "
        f"= {reference_alibi / GB:.2f} GB"
    )
    verdict = "PASS" if peak < args.budget_gb * GB else "FAIL"
    print(
        f"{verdict}: peak RSS {peak / GB:.2f} GB {'<' if verdict == 'PASS' else '>='} "
        f"{args.budget_gb} GB budget"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
