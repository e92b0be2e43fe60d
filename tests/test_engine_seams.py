"""The engine's seams: one factory for local and remote models, one explicit run spec, one
normalisation, the protocols the server talks to, ``Cancelled`` among the errors, and no
import cycle among the engine's modules."""

from __future__ import annotations

import ast
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import jinarag
from jinarag.errors import Cancelled, InputError, JinaragError
from jinarag.inference import pipeline
from jinarag.inference.batching import pass_budget, within_budget
from jinarag.inference.heads import l2_normalize, mean_pool
from jinarag.inference.protocols import PairScorer, TokenEmbedder, missing_members, require
from jinarag.inference.remote import RemoteEmbedder, RemoteReranker
from jinarag.inference.resolve import load_or_use, resolve
from jinarag.models.tokenization import Encoded

CORE = Path(__file__).resolve().parents[1] / "core"
EMBEDDER = "v2_geglu_8h"
RERANKER = "reranker_bf16"
TEXTS = ["a wing in a slipstream", "heat transfer in a slab", "flutter of swept wings"]


@pytest.fixture(scope="module")
def embedder(tiny_checkpoints):
    return jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], device="cpu")


@pytest.fixture(scope="module")
def reranker(tiny_checkpoints):
    return jinarag.Reranker.from_pretrained(tiny_checkpoints[RERANKER], device="cpu")


# --------------------------------------------------------------------------- resolve()


def test_resolve_loads_a_local_model_for_a_path(tiny_checkpoints):
    embedder = resolve("embedder", tiny_checkpoints[EMBEDDER], device="cpu", max_length=24)
    assert type(embedder) is jinarag.Embedder
    assert embedder.max_length == 24
    reranker = resolve("reranker", tiny_checkpoints[RERANKER], device="cpu")
    assert type(reranker) is jinarag.Reranker


def test_resolve_gives_a_remote_model_for_base_url_without_connecting():
    # Port 9 (discard) on loopback: nothing is sent before the first call.
    embedder = resolve("embedder", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert type(embedder) is RemoteEmbedder
    assert embedder.base_url == "http://127.0.0.1:9"
    assert type(resolve("reranker", base_url="http://127.0.0.1:9")) is RemoteReranker


def test_resolve_refuses_what_contradicts_itself(tiny_checkpoints):
    path = tiny_checkpoints[EMBEDDER]
    with pytest.raises(InputError, match="base_url"):
        resolve("embedder", path, base_url="http://127.0.0.1:9")
    with pytest.raises(InputError, match="max_length"):
        resolve("embedder", base_url="http://127.0.0.1:9", max_length=24)
    with pytest.raises(InputError, match="api_key"):
        resolve("embedder", path, api_key="k")
    with pytest.raises(InputError, match="neither"):
        resolve("embedder")
    with pytest.raises(InputError, match="cache_folder"):
        resolve("embedder", path, cache_folder="/tmp")
    with pytest.raises(InputError, match="kind"):
        resolve("classifier", path)


def test_load_or_use_is_the_factory_and_no_longer_a_method(embedder):
    assert load_or_use("embedder", "Adapter", None, embedder) is embedder
    remote = load_or_use("reranker", "Adapter", None, None, base_url="http://127.0.0.1:9")
    assert type(remote) is RemoteReranker
    with pytest.raises(InputError, match="embedder="):
        load_or_use("embedder", "Adapter", None, embedder, base_url="http://127.0.0.1:9")
    assert not hasattr(jinarag.Embedder, "load_or_use")


def test_the_old_remote_module_still_imports():
    import jinarag.inference.remote as new
    import jinarag.remote as old

    for name in ("RemoteEmbedder", "RemoteReranker", "RemoteModel", "connect", "API_KEY_ENV"):
        assert getattr(old, name) is getattr(new, name)


# --------------------------------------------------------------------------- the run spec


def test_the_pipeline_runs_on_an_explicit_spec(embedder):
    spec = embedder.run_spec(max_tokens=64)
    assert isinstance(spec, pipeline.RunSpec)
    assert (spec.max_batch_tokens, spec.max_length) == (64, embedder.max_length)
    encoded = embedder.tokenize(TEXTS)

    def window(start: int, stop: int) -> Encoded:
        ids, types = encoded.input_ids[start:stop], encoded.token_type_ids[start:stop]
        return Encoded(ids, types, truncated=[])

    rows = pipeline.run(
        spec, len(TEXTS), window, partial(mean_pool, normalize=False), batch_size=2, what="texts"
    )
    np.testing.assert_allclose(rows, embedder.embed(TEXTS, normalize=False), atol=1e-6)


def test_the_pipeline_imports_no_model_class():
    imported = _imports(CORE / "inference" / "pipeline.py")
    named = {"jinarag.inference." + m for m in ("pretrained", "embedder", "reranker", "remote")}
    assert not imported & named


# --------------------------------------------------------------------------- normalisation


def test_l2_normalize_keeps_zero_rows_and_makes_unit_norms():
    rows = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, -2e-3]], dtype=np.float32)
    for given in (rows, torch.from_numpy(rows)):
        out = np.asarray(l2_normalize(given))
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out[1], [0.0, 0.0])
        np.testing.assert_allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(l2_normalize(rows)[0], [0.6, 0.8], atol=1e-7)


def test_every_normalised_vector_comes_from_the_one_function(embedder):
    import jinarag.inference.embedder as embedder_module
    import jinarag.inference.heads as heads
    import jinarag.serving.app as app
    import jinarag.serving.tei as tei

    for module in (embedder_module, app, tei):
        assert module.l2_normalize is heads.l2_normalize
    raw = embedder.embed(TEXTS, normalize=False)
    np.testing.assert_allclose(embedder.embed(TEXTS), l2_normalize(raw), atol=1e-6)
    chunks = ["a wing in a slipstream", "and its flutter"]
    late_raw = embedder.embed_late_chunks(chunks, normalize=False)
    np.testing.assert_allclose(
        embedder.embed_late_chunks(chunks), l2_normalize(late_raw), atol=1e-6
    )


# --------------------------------------------------------------------------- protocols


def test_the_models_are_what_the_server_asks(embedder, reranker):
    assert missing_members(embedder, TokenEmbedder) == []
    assert missing_members(reranker, PairScorer) == []
    assert require(embedder, TokenEmbedder, "here") is embedder
    assert "score_tokens" in missing_members(embedder, PairScorer)


def test_a_model_without_the_capability_is_a_clear_error(embedder, reranker):
    with pytest.raises(InputError) as info:
        require(reranker, TokenEmbedder, "POST /v1/embeddings")
    message = str(info.value)
    assert "POST /v1/embeddings got Reranker, which is not a TokenEmbedder" in message
    assert "embed_tokens" in message and "jinarag.Embedder" in message


def test_the_batcher_refuses_a_job_its_model_cannot_run(embedder):
    from jinarag.serving.batcher import Batcher, Job, JobKind

    batcher = Batcher(embedder, max_wait_ms=0, max_queue=4)
    try:
        encoded = embedder.tokenize(TEXTS)
        job = Job("score", encoded, tokens=10)  # a kind's value is accepted
        assert job.kind is JobKind.SCORE and job.kind.protocol is PairScorer
        with pytest.raises(InputError, match="not a PairScorer.*score_tokens"):
            batcher.submit(job)
        rows = batcher.submit(Job(JobKind.EMBED, encoded, tokens=10)).future.result(60)
        np.testing.assert_allclose(rows, embedder.embed(TEXTS, normalize=False), atol=1e-6)
    finally:
        batcher.close()
        batcher.join(5)


def test_create_app_refuses_what_is_neither_kind():
    from jinarag.serving.app import create_app

    with pytest.raises(InputError, match="neither a TokenEmbedder .* nor a PairScorer"):
        create_app({"thing": object()}, None)


# --------------------------------------------------------------------------- budgets


def test_the_batcher_cuts_by_the_schedulers_budget_functions():
    assert within_budget([5, 5, 5], 0, 12, first=True) == (2, 10)
    assert within_budget([5, 5, 5], 2, 12, first=False) == (3, 5)
    assert within_budget([20, 5], 0, 12, first=True) == (1, 20)  # one, alone, when first
    assert within_budget([20, 5], 0, 12, first=False) == (0, 0)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert pass_budget(cpu, 16384, 2048) == 2048
    assert pass_budget(cpu, 1000, 2048) == 1000
    assert pass_budget(gpu, 65536, 2048) == 65536
    assert pass_budget(cpu, 16384, None) == 16384


def test_the_cpu_pass_budget_is_a_server_limit(embedder):
    from jinarag.serving.app import create_app
    from jinarag.serving.limits import DEFAULT_CPU_PASS_TOKENS, ServerLimits

    assert ServerLimits().cpu_pass_tokens == DEFAULT_CPU_PASS_TOKENS == 2048
    with pytest.raises(InputError, match="cpu_pass_tokens"):
        ServerLimits(cpu_pass_tokens=0)
    app = create_app({"tiny": embedder}, None, cpu_pass_tokens=512)
    assert app.state.limits.cpu_pass_tokens == 512
    batcher = app.state.batchers["tiny"]
    assert batcher.cpu_pass_tokens == 512 and batcher._pass_tokens() == 512
    batcher.close()


# --------------------------------------------------------------------------- Cancelled


def test_cancelled_is_one_class_among_the_errors(embedder):
    import jinarag.training

    assert jinarag.training.Cancelled is Cancelled is jinarag.Cancelled
    assert issubclass(Cancelled, JinaragError)
    with pytest.raises(Cancelled, match="should_stop"):
        embedder.embed(TEXTS, stop=lambda: True)


# --------------------------------------------------------------------------- no cycles

ENGINE = ("jinarag.inference", "jinarag.models", "jinarag.serving")
LEAVES = ("jinarag.errors", "jinarag.options", "jinarag.validation", "jinarag.remote")


def _module_name(path: Path) -> str:
    parts = tuple(p for p in path.relative_to(CORE).with_suffix("").parts if p != "__init__")
    return ".".join(("jinarag", *parts))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` names in an import, also inside functions and TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_no_import_cycle_among_the_engines_modules():
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    engine = {m for m in modules if m.startswith(ENGINE) or m in LEAVES}
    graph = {m: (_imports(modules[m]) & engine) - {m} for m in engine}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(engine):
        visit(module, [])
