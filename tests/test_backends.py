"""``backend="openvino"``: equal to torch float32 on every tiny checkpoint, its export cache
reused, rebuilt when stale or damaged, never a source of code; the options it refuses and the
extra it names; int8 close to float32; and the option reaching the CLI, the server, an adapter
and the Ray executor.

Tolerances (OpenVINO's CPU kernels sum in another order than torch's): normalised embeddings
within 1e-4 of torch float32 and cosine >= 0.99999; raw reranker logits within 1e-4.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import shutil
import sys
import warnings
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_checkpoints import VARIANTS, replace_weight

import jinarag
from jinarag.models import openvino_runtime
from jinarag.options import LoadOptions

needs_openvino = pytest.mark.skipif(
    find_spec("openvino") is None or find_spec("nncf") is None,
    reason="pip install 'jinarag[openvino]'",
)

ATOL = 1e-4
MIN_COSINE = 0.99999
# Mixed lengths, so the batch is padded; the last one is longer than classic BERT's 64 positions
# allow for some variants only after truncation, which is the same on both backends.
TEXTS = [
    "a wing in a slipstream",
    "heat transfer at hypersonic speed in a laminar boundary layer " * 4,
    "flutter",
    "experimental investigation of the aerodynamics of a wing " * 2,
]
PAIRS = [(TEXTS[0], text) for text in TEXTS] + [(TEXTS[2], TEXTS[1])]
CHUNKS = ["the boundary layer on a flat plate", "it thickens downstream", "heat flux at mach 5"]
EMBEDDERS = sorted(n for n, s in VARIANTS.items() if s.head == "embedder")
RERANKERS = sorted(n for n, s in VARIANTS.items() if s.head == "reranker")


@pytest.fixture(scope="module", autouse=True)
def export_cache(tmp_path_factory):
    """One export cache for the module (tests of the cache itself use their own)."""
    folder = tmp_path_factory.mktemp("export-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JINARAG_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def pair(tiny_checkpoints):
    """``pair(name, **options)``: (torch float32 model, openvino model) of a variant, loaded
    once per module."""
    loaded = {}

    def load(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in loaded:
            cls = jinarag.Reranker if VARIANTS[name].head == "reranker" else jinarag.Embedder
            path = tiny_checkpoints[name]
            loaded[key] = (
                cls.from_pretrained(path, device="cpu", backend="torch"),
                cls.from_pretrained(path, device="cpu", backend="openvino", **options),
            )
        return loaded[key]

    return load


def assert_same_vectors(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)
    cosines = (actual * expected).sum(1) / (
        np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert cosines.min() >= MIN_COSINE


def quietly(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jinarag.TruncationWarning)  # classic: 64 positions
        return call(*args, **kwargs)


# --------------------------------------------------------------------------- equal to torch


@needs_openvino
@pytest.mark.parametrize("name", EMBEDDERS)
def test_embeddings_equal_torch_on_padded_batches(pair, name):
    reference, model = pair(name)
    assert (reference.backend, model.backend) == ("torch", "openvino")
    assert_same_vectors(quietly(model.embed, TEXTS), quietly(reference.embed, TEXTS))
    raw = quietly(model.embed, TEXTS, normalize=False)
    expected = quietly(reference.embed, TEXTS, normalize=False)
    np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=ATOL)
    tokens = quietly(reference.tokenize, TEXTS)  # the server's path: tokenised once
    assert_same_vectors(model.embed_tokens(tokens), reference.embed_tokens(tokens))


@needs_openvino
@pytest.mark.parametrize("name", RERANKERS)
def test_reranker_logits_equal_torch(pair, name):
    reference, model = pair(name)
    logits = model.score_pairs(PAIRS, activation=None)
    np.testing.assert_allclose(logits, reference.score_pairs(PAIRS, activation=None), atol=ATOL)
    tokens = reference.tokenize_pairs(PAIRS)
    np.testing.assert_allclose(
        model.score_tokens(tokens, activation=None), logits, rtol=0, atol=1e-6
    )


@needs_openvino
@pytest.mark.parametrize("name", [n for n in EMBEDDERS if VARIANTS[n].arch != "classic"])
def test_late_chunks_equal_torch(pair, name):
    reference, model = pair(name)
    assert_same_vectors(model.embed_late_chunks(CHUNKS), reference.embed_late_chunks(CHUNKS))


@needs_openvino
@pytest.mark.parametrize("name", ["v2_geglu_8h", "code", "classic", "reranker_fp16"])
def test_the_exported_graph_takes_any_row_count_and_length(pair, name):
    reference, model = pair(name)
    lengths = (7, 64) if VARIANTS[name].arch == "classic" else (7, 64, 300)
    for length in lengths:
        ids = torch.randint(5, 60, (3, length))
        mask = torch.ones_like(ids)
        mask[1, length // 2 :] = 0
        mask[2, -1:] = 0
        types = torch.zeros_like(ids)
        positions = torch.arange(length).expand(3, length).contiguous()
        with torch.inference_mode():
            expected = reference.model(ids, mask, types, positions)
            actual = model.runtime(ids, mask, types, positions)
        kept = mask.bool()
        torch.testing.assert_close(actual[kept], expected[kept], rtol=0, atol=ATOL)


def _spy_on_fallback(model, monkeypatch) -> list:
    calls = []
    fallback = model.runtime.fallback
    monkeypatch.setattr(
        model.runtime, "fallback", lambda *a: calls.append(a[0].shape) or fallback(*a)
    )
    return calls


@needs_openvino
def test_rows_over_the_long_row_limit_run_on_torch(pair, monkeypatch):
    reference, model = pair("v2_geglu_8h")
    calls = _spy_on_fallback(model, monkeypatch)
    long_text = " ".join(["wing slipstream lift"] * 800)  # over 2048 tokens
    texts = [long_text, "flutter"]
    assert len(reference.tokenize([long_text]).input_ids[0]) > openvino_runtime.LONG_ROW_TOKENS
    assert_same_vectors(model.embed(texts), reference.embed(texts))
    assert calls and all(shape[1] > openvino_runtime.LONG_ROW_TOKENS for shape in calls)


@needs_openvino
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_gives_torch_s_results_past_the_long_row_limit(pair, monkeypatch, name):
    """The same rule at a limit of 16 tokens, so every variant's long rows go to torch
    (classic BERT has only 64 positions) while its short ones stay on OpenVINO."""
    reference, model = pair(name)
    monkeypatch.setattr(openvino_runtime, "LONG_ROW_TOKENS", 16)
    calls = _spy_on_fallback(model, monkeypatch)
    if VARIANTS[name].head == "reranker":
        pairs = [("flutter", "wing"), (TEXTS[0], TEXTS[3])]  # under and over 16 tokens
        expected = reference.score_pairs(pairs, activation=None, batch_size=1)
        actual = model.score_pairs(pairs, activation=None, batch_size=1)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)
    else:
        texts = [TEXTS[0], TEXTS[3]]
        actual = quietly(model.embed, texts, batch_size=1)
        assert_same_vectors(actual, quietly(reference.embed, texts, batch_size=1))
    assert len(calls) == 1 and calls[0][1] > 16


@needs_openvino
@pytest.mark.slow
@pytest.mark.parametrize("name", ["v2_geglu_12h", "code"])
def test_eager_attention_exports_too(pair, name):
    reference, model = pair(name, attention="eager")
    assert model.model.attn_implementation == "eager"
    assert_same_vectors(model.embed(TEXTS), reference.embed(TEXTS))


@needs_openvino
@pytest.mark.parametrize("threads", [1, "auto"])
def test_the_thread_policy_sets_the_runtime_threads(pair, threads):
    reference, model = pair("v2_geglu_12h", num_threads=threads)
    for _ in range(3):
        assert_same_vectors(model.embed(TEXTS), reference.embed(TEXTS))
    compiled = set(model.runtime._compiled)
    assert compiled == {1} if threads == 1 else compiled <= {1, torch.get_num_threads()}


@needs_openvino
def test_the_server_batches_requests_on_openvino(pair):
    pytest.importorskip("fastapi")
    from jinarag.serving.app import create_app

    embedders, rerankers = pair("v2_geglu_8h"), pair("reranker_fp16")
    app = create_app(embedders[1], rerankers[1], max_wait_ms=200)
    requests = [("POST", "/v1/embeddings", {"input": TEXTS[: i + 1]}) for i in range(4)]
    requests.append(("POST", "/v1/rerank", {"query": TEXTS[0], "documents": TEXTS}))
    responses = asyncio.run(_gather(app, requests))
    for i, response in enumerate(responses[:4]):
        rows = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
        assert_same_vectors(rows, embedders[0].embed(TEXTS[: i + 1]))
    scores = {r["index"]: r["relevance_score"] for r in responses[4].json()["results"]}
    expected = rerankers[0].score(TEXTS[0], TEXTS)
    np.testing.assert_allclose([scores[i] for i in range(len(TEXTS))], expected, atol=ATOL)


async def _gather(app, requests):
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
        return await asyncio.gather(*(client.request(m, p, json=j) for m, p, j in requests))


# --------------------------------------------------------------------------- the export cache


@pytest.fixture
def fresh(tiny_checkpoints, tmp_path, monkeypatch):
    """A writable copy of the 8-head v2 checkpoint, an empty cache, and an export counter."""
    checkpoint = Path(shutil.copytree(tiny_checkpoints["v2_geglu_8h"], tmp_path / "checkpoint"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("JINARAG_CACHE_DIR", str(cache))
    exports = []
    export = openvino_runtime.export_encoder
    monkeypatch.setattr(
        openvino_runtime, "export_encoder", lambda *a: exports.append(1) or export(*a)
    )
    return checkpoint, cache / "openvino", exports


def _load(path, **options):
    return jinarag.Embedder.from_pretrained(path, device="cpu", backend="openvino", **options)


def _torch_vectors(path):
    return jinarag.Embedder.from_pretrained(path, device="cpu", backend="torch").embed(TEXTS)


@needs_openvino
def test_the_second_load_reads_the_cache(fresh):
    checkpoint, cache, exports = fresh
    first = _load(checkpoint).embed(TEXTS)
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["key"] == folder.name and set(meta["files"]) == {"model.xml", "model.bin"}
    assert meta["inputs"]["weights"]["file"] == "model.safetensors"
    second = _load(checkpoint).embed(TEXTS)
    assert exports == [1]
    np.testing.assert_array_equal(second, first)


@needs_openvino
@pytest.mark.slow
def test_a_changed_checkpoint_is_exported_again(fresh):
    checkpoint, cache, exports = fresh
    _load(checkpoint)
    replace_weight(checkpoint, "embeddings.LayerNorm.bias", torch.full((32,), 0.25))
    vectors = _load(checkpoint).embed(TEXTS)
    assert exports == [1, 1]
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    assert_same_vectors(vectors, _torch_vectors(checkpoint))


@needs_openvino
@pytest.mark.parametrize(
    ("damaged", "how"),
    [
        ("model.bin", "flip"),
        pytest.param("model.xml", "truncate", marks=pytest.mark.slow),
        pytest.param("meta.json", "garbage", marks=pytest.mark.slow),
        pytest.param("meta.json", "other-hash", marks=pytest.mark.slow),
    ],
)
def test_a_damaged_cache_is_rebuilt_never_used(fresh, damaged, how):
    checkpoint, cache, exports = fresh
    _load(checkpoint)
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    target = folder / damaged
    data = target.read_bytes()
    if how == "flip":
        target.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif how == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        target.write_text("{not json")
    else:
        meta = json.loads(data)
        meta["files"]["model.bin"] = "0" * 64
        target.write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="exporting it again"):
        model = _load(checkpoint)
    assert exports == [1, 1]
    assert_same_vectors(model.embed(TEXTS), _torch_vectors(checkpoint))
    assert _load(checkpoint) is not None and exports == [1, 1]  # the rebuilt folder verifies


class _Touch:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@needs_openvino
def test_nothing_in_the_cache_or_the_checkpoint_is_executed(fresh, tmp_path):
    checkpoint, cache, exports = fresh
    _load(checkpoint)
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    marker = tmp_path / "executed"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n"
    for directory in (folder, checkpoint):
        (directory / "sitecustomize.py").write_text(code)
        (directory / "modeling_jina_bert.py").write_text(code)
        (directory / "model.pkl").write_bytes(pickle.dumps(_Touch(marker)))
        (directory / "pytorch_model.bin").write_bytes(pickle.dumps(_Touch(marker)))
    config = json.loads((checkpoint / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_jina_bert.JinaBertModel"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    model = _load(checkpoint)  # config.json changed: a new export, from our own encoder
    assert_same_vectors(model.embed(TEXTS), _torch_vectors(checkpoint))
    assert _load(checkpoint) is not None
    assert exports == [1, 1]
    assert not marker.exists()


@needs_openvino
@pytest.mark.slow
def test_an_unwritable_cache_warns_and_still_runs(fresh, tmp_path, monkeypatch):
    checkpoint, _, exports = fresh
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("JINARAG_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="JINARAG_CACHE_DIR"):
        model = _load(checkpoint)
    assert_same_vectors(model.embed(TEXTS), _torch_vectors(checkpoint))


# --------------------------------------------------------------------------- options and errors


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"device": "cuda"}, "device='cpu'"),
        ({"device": "cuda:1"}, "backend='torch'"),
        ({"dtype": "float16"}, "dtype"),
        ({"dtype": "fp16"}, "backend='torch'"),
        ({"attention": "flex"}, "backend='torch'"),
    ],
)
def test_what_openvino_cannot_run_is_refused_with_the_fix(options, named):
    with pytest.raises(jinarag.InputError) as info:
        LoadOptions(backend="openvino", **options)
    assert named in str(info.value)
    LoadOptions(backend="torch", **options)  # fine on torch


@pytest.mark.parametrize("missing", ["openvino", "nncf"])
def test_a_missing_runtime_is_an_input_error_naming_the_extra(
    tiny_checkpoints, monkeypatch, missing
):
    monkeypatch.setitem(sys.modules, missing, None)  # `import openvino` raises ImportError
    options = {"quantize": "int8"} if missing == "nncf" else {}
    with pytest.raises(jinarag.InputError) as info:
        jinarag.Embedder.from_pretrained(
            tiny_checkpoints["v2_geglu_8h"], backend="openvino", **options
        )
    assert "pip install 'jinarag[openvino]'" in str(info.value)
    assert missing in str(info.value)


@needs_openvino
@pytest.mark.slow  # a fresh interpreter
def test_an_export_reports_no_usage_to_intel(tiny_checkpoints, tmp_path):
    """OpenVINO's converter reports usage unless the user opted out; jinarag's exports do not
    (only reports the reporter would send, with consent, are counted)."""
    import subprocess

    code = f"""
import json, os
import openvino_telemetry.main as reporter
sent = []
reporter.Telemetry.send_event = lambda self, *a, **k: sent.append(a[:2]) if self.consent else None
import jinarag
os.environ["JINARAG_CACHE_DIR"] = {str(tmp_path)!r}
path = {str(tiny_checkpoints["v2_geglu_8h"])!r}
jinarag.Embedder.from_pretrained(path, device="cpu", backend="openvino").embed(["wing"])
print(json.dumps([sent, os.environ.get("CI")]))
"""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[], None]


@pytest.mark.slow  # a fresh interpreter
def test_openvino_and_nncf_are_imported_only_when_the_backend_is_used():
    import subprocess

    code = (
        "import sys, jinarag; jinarag.Embedder, jinarag.Reranker; "
        "jinarag.LoadOptions(backend='openvino', quantize='int8'); "
        "import jinarag.models.openvino_runtime, jinarag.cli.common; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openvino', 'nncf')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_auto_is_openvino_where_it_gives_torchs_vectors_decided_in_one_place(
    tiny_checkpoints, monkeypatch
):
    from jinarag.models import placement

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    expected = "openvino" if find_spec("openvino") is not None else "torch"
    assert jinarag.Embedder.from_pretrained(tiny_checkpoints["v2_geglu_8h"]).backend == expected
    assert placement.resolve_backend(LoadOptions(), cpu) == expected
    assert placement.resolve_backend(LoadOptions(quantize="int8"), cpu) == expected
    # Where OpenVINO would not give torch float32's vectors, or cannot run: torch.
    assert placement.resolve_backend(LoadOptions(), cuda) == "torch"
    assert placement.resolve_backend(LoadOptions(dtype="bfloat16"), cpu) == "torch"
    assert placement.resolve_backend(LoadOptions(attention="flex"), cpu) == "torch"
    assert placement.resolve_backend(LoadOptions(backend="torch"), cpu) == "torch"
    monkeypatch.setitem(sys.modules, "openvino", None)  # the extra not installed
    assert placement.resolve_backend(LoadOptions(), cpu) == "torch"


@needs_openvino
def test_auto_runs_on_torch_when_the_export_fails_and_says_why(tiny_checkpoints, monkeypatch):
    from jinarag.models import openvino_runtime

    def failing_export(*args, **kwargs):
        raise RuntimeError("the converter met an operation it cannot export")

    monkeypatch.setattr(openvino_runtime, "load_openvino", failing_export)
    path = tiny_checkpoints["v2_geglu_8h"]
    with pytest.warns(RuntimeWarning, match="cannot export.*runs on torch.*backend='torch'"):
        model = jinarag.Embedder.from_pretrained(path, device="cpu")
    assert model.backend == "torch" and model.runtime is None
    expected = jinarag.Embedder.from_pretrained(path, device="cpu", backend="torch")
    np.testing.assert_allclose(
        model.embed(["wing flutter"]), expected.embed(["wing flutter"]), rtol=0, atol=1e-6
    )
    with pytest.raises(RuntimeError, match="cannot export"):  # asked for by name: the error
        jinarag.Embedder.from_pretrained(path, device="cpu", backend="openvino")


@needs_openvino
@pytest.mark.slow
def test_bfloat16_on_openvino_keeps_the_vectors_or_is_refused_where_it_would_be_slow(
    tiny_checkpoints, minilm_dir, minilm_embedder
):
    import openvino

    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in capabilities:
        with pytest.raises(jinarag.InputError, match="bf16 units"):
            _load(tiny_checkpoints["v2_geglu_8h"], dtype="bfloat16")
        return
    model = jinarag.Embedder.from_pretrained(
        minilm_dir, device="cpu", max_length=256, backend="openvino", dtype="bfloat16"
    )
    assert model.runtime.dtype == torch.bfloat16 and model.dtype == torch.float32
    assert "dtype=bfloat16, backend=openvino" in repr(model)
    texts = ["lift of a wing in a slipstream", "heat flux at Mach 5", *TEXTS]
    assert (model.embed(texts) * minilm_embedder.embed(texts)).sum(1).min() >= 0.9999


# --------------------------------------------------------------------------- int8


@needs_openvino
@pytest.mark.slow
def test_int8_on_openvino_is_close_to_float32_on_minilm(minilm_dir, minilm_embedder):
    texts = ["lift of a wing in a slipstream", "heat flux at Mach 5", *TEXTS]
    int8 = jinarag.Embedder.from_pretrained(
        minilm_dir, device="cpu", max_length=256, backend="openvino", quantize="int8"
    )
    assert int8.runtime.int8 and int8.backend == "openvino"
    cosines = (int8.embed(texts) * minilm_embedder.embed(texts)).sum(1)
    assert cosines.min() >= 0.98


@needs_openvino
def test_int8_reranker_runs_cached_and_ranks_like_float32(pair, monkeypatch):
    reference, _ = pair("reranker_bf16")
    calls = []
    quantize = openvino_runtime.quantize_int8
    monkeypatch.setattr(
        openvino_runtime, "quantize_int8", lambda *a: calls.append(1) or quantize(*a)
    )
    path = reference.source
    for _ in range(2):
        model = jinarag.Reranker.from_pretrained(
            path, device="cpu", backend="openvino", quantize="int8"
        )
    assert calls == [1]  # the second load read the int8 IR from the cache
    logits = model.score_pairs(PAIRS, activation=None)
    expected = reference.score_pairs(PAIRS, activation=None)
    assert np.isfinite(logits).all()
    assert np.corrcoef(logits, expected)[0, 1] > 0.9


# --------------------------------------------------------------------------- where the option goes


@needs_openvino
def test_a_langchain_adapter_takes_the_backend(pair, tiny_checkpoints):
    pytest.importorskip("langchain_core")
    from jinarag.langchain import JinaEmbeddings

    adapter = JinaEmbeddings(str(tiny_checkpoints["v2_geglu_8h"]), backend="openvino")
    assert adapter.embedder.backend == "openvino"
    reference, _ = pair("v2_geglu_8h")
    assert_same_vectors(np.array(adapter.embed_documents(TEXTS)), reference.embed(TEXTS))


@needs_openvino
def test_the_ray_executor_sends_the_backend_to_its_actors(pair):
    from jinarag.retrieval.ingest.ray_executor import _model_spec

    _, model = pair("v2_geglu_8h")
    spec = _model_spec(model, gpu=False, threads=1)
    assert spec["options"]["backend"] == "openvino"
    assert LoadOptions.from_dict(spec["options"]).backend == "openvino"


def test_the_cli_takes_backend_for_every_command_that_loads_a_model():
    from jinarag.cli import build_parser
    from jinarag.cli.common import loading_options

    parser = build_parser()
    commands = {
        "search": ["search", "a query"],
        "index": ["index", "docs/"],
        "serve": ["serve"],
        "eval": ["eval", "tests/data/cranfield"],
        "demo": ["demo"],
    }
    for argv in commands.values():
        args = parser.parse_args([*argv, "--backend", "openvino"])
        assert loading_options(args) == {"backend": "openvino"}
        assert loading_options(parser.parse_args(argv)) == {}
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "q", "--backend", "onnx"])
