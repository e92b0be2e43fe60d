"""What a first run of the command line meets: a store that knows its own embedder (``list``,
``stats`` and ``delete`` load no model; ``search`` and ``index`` default to the recorded one and
refuse another, by the hash of its weights when both are known), one-line notes said once,
no progress bar for no work, truncation said once per dataset. In process, over a tiny
checkpoint built at test time."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from tiny_checkpoints import build_variant

import jinarag.cli.common as common
from jinarag import Embedder, HybridIndex
from jinarag.cli import main
from jinarag.cli.eval import _truncations
from jinarag.cli.recorded import weights_digest
from jinarag.errors import TruncationWarning
from jinarag.models.export_cache import file_sha256
from jinarag.retrieval.store.files import recorded_metadata


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two tiny embedders (different weights), and a copy of the first under another path."""
    root = tmp_path_factory.mktemp("first-contact-models")
    first = build_variant("v2_geglu_8h", root / "first")
    other = build_variant("v2_bin", root / "other")  # same size, other weights
    copy = root / "copy"
    shutil.copytree(first, copy)
    return {"first": first, "other": other, "copy": copy}


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(3):
        (folder / f"n{n}.md").write_text(f"# Note {n}\n\nwing lift and flutter number {n}\n")
    return folder


def cli(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def indexed(capsys, docs: Path, store: Path, model: Path) -> None:
    code, _, err = cli(capsys, "index", docs, "--store", store, "--model", model, "--quiet")
    assert code == 0, err


def no_loading(monkeypatch) -> None:
    """Make any model load fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(Embedder, "from_pretrained", refuse)


def test_index_records_the_embedder_its_dimension_and_weights_hash(capsys, models, docs, tmp_path):
    indexed(capsys, docs, tmp_path / "store", models["first"])
    meta = recorded_metadata(tmp_path / "store", "jinarag")
    assert meta["jinarag:embedder"] == str(models["first"].resolve())
    assert meta["jinarag:weights"] == file_sha256(models["first"] / "model.safetensors")
    assert isinstance(meta["jinarag:dim"], int)


def test_list_stats_and_delete_load_no_model(capsys, monkeypatch, models, docs, tmp_path):
    store = tmp_path / "store"
    indexed(capsys, docs, store, models["first"])
    no_loading(monkeypatch)
    code, out, err = cli(capsys, "stats", "--store", store, "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["embedder"]["name"] == str(models["first"].resolve())
    assert figures["records"] == 3
    code, out, err = cli(capsys, "list", "--store", store)
    assert code == 0 and "n1.md" in out, err
    code, out, err = cli(capsys, "delete", "n1.md", "--store", store)
    assert code == 0 and "deleted 1 records" in out, err
    # --model with these commands is checked against the record, still without loading it.
    code, _, err = cli(capsys, "stats", "--store", store, "--model", models["copy"])
    assert code == 0, err
    code, _, err = cli(capsys, "list", "--store", store, "--model", models["other"])
    assert code == 1 and "was built with embedder" in err
    assert str(models["first"].resolve()) in err and str(models["other"].resolve()) in err


def test_search_and_index_default_to_the_recorded_embedder(capsys, models, docs, tmp_path):
    store = tmp_path / "store"
    indexed(capsys, docs, store, models["first"])
    code, out, err = cli(capsys, "search", "flutter", "--store", store, "--k", "2", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 2
    assert "note:" not in err  # no default model tried, so no fallback said
    (docs / "n9.md").write_text("a new note about stall speed\n")
    code, out, err = cli(capsys, "index", docs, "--store", store, "--quiet")
    assert code == 0 and "added 1" in out, err


def test_another_model_is_refused_by_hash_the_same_weights_elsewhere_pass(
    capsys, models, docs, tmp_path
):
    store = tmp_path / "store"
    indexed(capsys, docs, store, models["first"])
    code, _, err = cli(capsys, "search", "lift", "--store", store, "--model", models["copy"])
    assert code == 0, err  # same weights under another path: the same embedder
    code, _, err = cli(capsys, "search", "lift", "--store", store, "--model", models["other"])
    assert code == 1
    assert "was built with embedder" in err and "weights sha256" in err
    assert str(models["first"].resolve()) in err and str(models["other"].resolve()) in err
    # Same path, other weights (retrained in place): refused by hash though the name agrees.
    changed = tmp_path / "changed"
    shutil.copytree(models["other"], changed)
    other_store = tmp_path / "other-store"
    indexed(capsys, docs, other_store, changed)
    shutil.rmtree(changed)
    shutil.copytree(models["first"], changed)
    code, _, err = cli(capsys, "search", "lift", "--store", other_store, "--model", changed)
    assert code == 1 and "weights sha256" in err


def test_a_store_without_a_weights_hash_is_checked_by_name(capsys, models, tmp_path):
    embedder = Embedder.from_pretrained(models["first"], device="cpu", backend="torch")
    with HybridIndex(tmp_path / "store", embedder=embedder) as index:  # the Python API
        index.add(["wing lift", "flutter"], ids=["a", "b"])
    assert "jinarag:weights" not in recorded_metadata(tmp_path / "store", "jinarag")
    code, _, err = cli(capsys, "search", "lift", "--store", tmp_path / "store", "--k", "1")
    assert code == 0, err
    code, _, err = cli(
        capsys, "search", "lift", "--store", tmp_path / "store", "--model", models["copy"]
    )
    assert code == 1 and "was built with embedder" in err


def test_weights_in_the_hub_cache_are_named_by_their_blob(tmp_path):
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "c0ffee"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    digest = "ab" * 32  # the cache names a blob by its SHA-256: nothing is read
    (blobs / digest).write_bytes(b"not really weights")
    (snapshot / "model.safetensors").symlink_to(blobs / digest)
    assert weights_digest(snapshot) == digest


def test_index_with_nothing_to_do_shows_no_bar(capsys, models, docs, tmp_path):
    indexed(capsys, docs, tmp_path / "store", models["first"])
    code, out, err = cli(capsys, "index", docs, "--store", tmp_path / "store")
    assert code == 0 and "unchanged 3" in out
    assert "indexing" not in err


def test_the_offline_fallback_is_one_line_once_per_process(capsys, monkeypatch):
    from jinarag.inference import defaults

    monkeypatch.setattr(common, "_NOTED", set())
    monkeypatch.setattr(common, "_in_hub_cache", lambda repo: False)
    why = "download from https://huggingface.co/x (skipped: HF_HUB_OFFLINE=1)"
    monkeypatch.setattr(
        defaults,
        "load_embedder",
        lambda name, **kw: ("embedder", f"x is not available here ({why}); using y instead."),
    )
    monkeypatch.setattr(
        defaults,
        "load_reranker",
        lambda name, **kw: (None, f"z is not available here ({why}); reranking skipped."),
    )
    for _ in range(2):
        common.load_embedder(None)
        common.load_reranker(None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "(skipped: HF_HUB_OFFLINE=1)" in lines[0] and "reranking" in lines[0]
    assert "https://" not in lines[0]


def test_truncation_is_said_once_not_per_call(capsys):
    with _truncations(lambda count: f"cut in {count} calls"):
        for _ in range(5):
            warnings.warn(TruncationWarning(1, 10, 512, "pairs"), stacklevel=1)
    err = capsys.readouterr().err
    assert err.strip() == "note: cut in 5 calls"
