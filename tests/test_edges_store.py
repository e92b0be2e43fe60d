"""Damaged stores, tried on every surface that opens one: none may be read as an empty store.

A store whose BM25 snapshot lists records is damaged in one way per row (Chroma's database cut
to 0 bytes, replaced by another store's, deleted, its records deleted behind jinarag's back;
an HNSW file deleted or cut; the vector segment folder removed), then opened by the Python API
or a CLI command (``search``, ``stats``, ``list``, ``index``; ``verify`` and its repair in the
slow tier, each runs a child process). Each must refuse, naming the damaged file and the way
back, and leave the store as it found it; ``verify --repair`` must then give a store that
answers again, every record it still holds reachable, the snapshot of lost records kept.

``python tests/edge_probe.py test_edges_store`` counts the rows as "refused" (as it should be),
"read as empty" (opened and answered, or wrote, without a word) or "other" (any other ending).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import chromadb
import pytest
from chromadb.config import Settings
from tiny_checkpoints import build_variant

from jinarag import Embedder, HybridIndex, StoreCorruptError, StoreError, StoreMismatchError
from jinarag.cli import main as cli
from jinarag.retrieval.store.files import SQLITE_FILE, vector_folder

N = 40
TEXTS = [f"record {i} about wing lift, stall speed and flutter number {i}" for i in range(N)]
IDS = [f"r{i}" for i in range(N)]
SNAPSHOT = Path("jinarag-bm25") / "jinarag.json"


def build_env(root: Path) -> SimpleNamespace:
    """A tiny embedder, and a template store of ``N`` records whose vectors Chroma flushed
    to HNSW files (every 10 records), from which each row copies its own store."""
    model = build_variant("v2_geglu_8h", root / "model")
    embedder = Embedder.from_pretrained(model, device="cpu", backend="torch", max_length=32)
    template = root / "template"
    client = chromadb.PersistentClient(str(template), Settings(anonymized_telemetry=False))
    client.get_or_create_collection(
        "jinarag",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine", "sync_threshold": 10, "batch_size": 10}},
    )
    with HybridIndex(template, embedder=embedder) as index:
        index.add(TEXTS, ids=IDS)
    other = root / "other"  # another store, with another collection, for a swapped database
    with HybridIndex(other, collection="notes", embedder=embedder) as index:
        index.add(["a note"], ids=["n0"])
    (root / "docs").mkdir()
    (root / "docs" / "new.txt").write_text("a new document about flutter")
    return SimpleNamespace(
        root=root, model=model, embedder=embedder, template=template, other=other
    )


# ------------------------------------------------------------------------------------ damage


def _zero_database(store: Path, env: SimpleNamespace) -> None:
    os.truncate(store / SQLITE_FILE, 0)


def _swap_database(store: Path, env: SimpleNamespace) -> None:
    shutil.copyfile(env.other / SQLITE_FILE, store / SQLITE_FILE)


def _delete_database(store: Path, env: SimpleNamespace) -> None:
    (store / SQLITE_FILE).unlink()


def _delete_records_behind(store: Path, env: SimpleNamespace) -> None:
    """Delete half the records with Chroma's own client (no jinarag write generation)."""
    code = (
        "import chromadb, sys\n"
        "from chromadb.config import Settings\n"
        "c = chromadb.PersistentClient(sys.argv[1], Settings(anonymized_telemetry=False))\n"
        f"c.get_collection('jinarag').delete(ids={IDS[: N // 2]!r})\n"
    )
    # In a child process: this one must not keep a Chroma system for the store open.
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code, str(store)], check=True)


def _delete_hnsw_file(store: Path, env: SimpleNamespace) -> None:
    (vector_folder(store, "jinarag") / "header.bin").unlink()


def _cut_hnsw_file(store: Path, env: SimpleNamespace) -> None:
    path = vector_folder(store, "jinarag") / "data_level0.bin"
    os.truncate(path, 64)


def _halve_hnsw_file(store: Path, env: SimpleNamespace) -> None:
    """Cut the graph file in half: Chroma allocates room for more elements than it holds, so
    this may cut only unused room (then every record must stay reachable)."""
    path = vector_folder(store, "jinarag") / "data_level0.bin"
    os.truncate(path, path.stat().st_size // 2)


def _remove_segment_folder(store: Path, env: SimpleNamespace) -> None:
    shutil.rmtree(vector_folder(store, "jinarag"))


DAMAGE: dict[str, tuple[Callable[[Path, SimpleNamespace], None], tuple[str, ...]]] = {
    # damage: (how, pieces the refusal names)
    "database cut to 0 bytes": (_zero_database, ("0 bytes", "--repair", f"{N} records")),
    "database swapped for another store's": (_swap_database, ("only notes", "--repair")),
    "database deleted": (_delete_database, ("is missing", "BM25 snapshot")),
    "records deleted behind jinarag": (_delete_records_behind, (f"holds {N // 2} records",)),
    "HNSW header.bin deleted": (_delete_hnsw_file, ("header.bin", "--repair")),
    "HNSW data_level0.bin cut to 64 bytes": (_cut_hnsw_file, ("data_level0.bin", "--repair")),
    "HNSW data_level0.bin cut in half": (_halve_hnsw_file, ("data_level0.bin", "--repair")),
    "vector segment folder removed": (_remove_segment_folder, ("is missing", "--repair")),
}


# ------------------------------------------------------------------------------------ surfaces


def _python_open(store: Path, env: SimpleNamespace) -> tuple[int, str]:
    try:
        with HybridIndex(store, embedder=env.embedder) as index:
            return 0, f"opened: {index.count()} records, search gives {len(index.search('wing'))}"
    except StoreCorruptError as exc:
        return 1, str(exc)


def _cli(*args: str) -> Callable[[Path, SimpleNamespace], tuple[int, str]]:
    def run(store: Path, env: SimpleNamespace) -> tuple[int, str]:
        argv = [a.format(store=store, model=env.model, docs=env.root / "docs") for a in args]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli(argv)
        return code, f"{err.getvalue()}{out.getvalue()}"

    return run


STORE = ("--store", "{store}", "--model", "{model}", "--backend", "torch")
SURFACES: dict[str, Callable[[Path, SimpleNamespace], tuple[int, str]]] = {
    "HybridIndex(path)": _python_open,
    "jinarag search": _cli("search", "wing lift", *STORE),
    "jinarag stats": _cli("stats", *STORE),
    "jinarag list": _cli("list", *STORE),
    "jinarag index": _cli("index", "{docs}", *STORE, "--quiet"),
}
SLOW_SURFACES = {"jinarag verify": _cli("verify", "{store}", "--model", "{model}")}


def _fresh_store(env: SimpleNamespace, name: str) -> Path:
    store = env.root / "stores" / name.replace(" ", "-").replace("'", "")
    shutil.copytree(env.template, store)
    return store


def _whole(store: Path, env: SimpleNamespace) -> bool:
    """Whether the store opens with every record, each reachable by dense search."""
    try:
        with HybridIndex(store, embedder=env.embedder) as index:
            return index.count() >= N and index.verify().healthy
    except StoreCorruptError:
        return False


def outcome(damage: str, surface: str, env: SimpleNamespace) -> tuple[str, str]:
    """``("refused" | "survived" | "read as empty" | "other", detail)`` of opening a store
    with ``damage`` on ``surface``: "refused" also needs the snapshot left as it was,
    "survived" (damage that cost nothing) every record still there and reachable."""
    how, named = DAMAGE[damage]
    store = _fresh_store(env, f"{damage}-{surface}")
    saved = (store / SNAPSHOT).read_bytes()
    how(store, env)
    code, said = {**SURFACES, **SLOW_SURFACES}[surface](store, env)
    if code == 0:
        word = "survived" if _whole(store, env) else "read as empty"
        return word, said.strip()[-300:]
    missing = [piece for piece in named if piece not in said]
    if missing or (store / SNAPSHOT).read_bytes() != saved:
        return "other", f"missing {missing} or snapshot changed: {said.strip()[-300:]}"
    return "refused", said.strip()[-300:]


def path_is_a_file(env: SimpleNamespace) -> tuple[str, str]:
    """A store path that is a file, opened three times in one process: each try must be the
    same named StoreError (a failed open must leave nothing behind that changes the next)."""
    path = env.root / "a-file"
    path.write_text("not a store")
    said = []
    for _ in range(3):
        try:
            HybridIndex(path, embedder=env.embedder)
        except StoreError as exc:
            said.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - any other ending is the finding
            return "other", f"{type(exc).__name__}: {exc}"
        else:
            return "read as empty", "opened"
    named = all(f"the store path {path} is a file" in text for text in said)
    return ("refused" if named else "other"), said[-1]


def probe(root: Path) -> list[tuple[str, str, str, str]]:
    env = build_env(root)
    return [
        (surface, damage, *outcome(damage, surface, env))
        for surface in {**SURFACES, **SLOW_SURFACES}
        for damage in DAMAGE
    ] + [("HybridIndex(path)", "store path is a file, three tries", *path_is_a_file(env))]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> SimpleNamespace:
    return build_env(tmp_path_factory.mktemp("edges-store"))


@pytest.mark.parametrize("surface", list(SURFACES))
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_refused(env, damage, surface):
    word, detail = outcome(damage, surface, env)
    assert word in ("refused", "survived"), f"{damage} on {surface}: {word}: {detail}"


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_names_the_damage(env, damage):
    word, detail = outcome(damage, "jinarag verify", env)
    assert word in ("refused", "survived"), f"{damage} on verify: {word}: {detail}"


@pytest.mark.parametrize("damage", ["database cut to 0 bytes", "records deleted behind jinarag"])
def test_the_refusal_is_a_store_mismatch_naming_the_snapshot(env, damage):
    store = _fresh_store(env, f"{damage}-mismatch")
    DAMAGE[damage][0](store, env)
    with pytest.raises(StoreMismatchError) as info:
        HybridIndex(store, embedder=env.embedder)
    assert Path(info.value.snapshot) == store / SNAPSHOT
    assert f"jinarag verify {store} --collection jinarag --repair" in str(info.value)


def test_a_store_path_that_is_a_file_is_named_on_every_try(env):
    word, detail = path_is_a_file(env)
    assert word == "refused", detail


def test_a_fresh_store_and_a_written_one_still_open(env, tmp_path):
    """The checks refuse damage only: a new store, and one written by another process since
    the snapshot (a new generation), open as they are."""
    with HybridIndex(tmp_path / "new", embedder=env.embedder) as index:
        assert index.count() == 0
        index.add(["one"], ids=["x"])
    store = _fresh_store(env, "written-since")
    code = (
        "import sys\nfrom jinarag import Embedder, HybridIndex\n"
        "e = Embedder.from_pretrained(sys.argv[2], device='cpu', backend='torch')\n"
        "HybridIndex(sys.argv[1], embedder=e).delete(ids=['r0', 'r1'])\n"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code, str(store), str(env.model)], check=True)
    with HybridIndex(store, embedder=env.embedder) as index:
        assert index.count() == N - 2


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["database cut to 0 bytes", "records deleted behind jinarag"])
def test_verify_repair_keeps_what_the_database_holds_and_the_snapshot(env, damage):
    store = _fresh_store(env, f"{damage}-repair")
    saved = (store / SNAPSHOT).read_bytes()
    DAMAGE[damage][0](store, env)
    code, said = _cli("verify", "{store}", "--model", "{model}", "--repair")(store, env)
    assert code == 0, said
    aside = list((store / SNAPSHOT).parent.glob("jinarag.json.set-aside-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == saved
    assert f"set aside as {aside[0]}" in said
    left = 0 if damage == "database cut to 0 bytes" else N // 2
    with HybridIndex(store, embedder=env.embedder) as index:
        assert index.count() == left
        assert index.verify().healthy


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    [
        "HNSW header.bin deleted",
        "HNSW data_level0.bin cut to 64 bytes",
        "vector segment folder removed",
    ],
)
def test_verify_repair_of_the_vector_index_keeps_every_record(env, damage):
    store = _fresh_store(env, f"{damage}-rebuild")
    DAMAGE[damage][0](store, env)
    code, said = _cli("verify", "{store}", "--model", "{model}", "--repair")(store, env)
    assert code == 0, said
    with HybridIndex(store, embedder=env.embedder) as index:
        report = index.verify()
        assert index.count() == N and report.healthy and not report.unreachable
