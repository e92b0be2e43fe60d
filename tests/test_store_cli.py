"""`jinarag list`, `stats`, `delete` and `search --json`, run through the real entry point over
a real store (MiniLM, Chroma, BM25) built once per module; destructive tests work on a copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jinarag.cli import main
from jinarag.errors import InputError
from jinarag.retrieval.index import HybridIndex


@pytest.fixture(scope="module")
def built(tmp_path_factory, minilm_embedder) -> tuple[Path, Path]:
    """``(docs folder, store)``: 4 files (5 documents, a.md in several chunks) indexed with
    add_files, plus one record added through the Python API without a source."""
    base = tmp_path_factory.mktemp("store-cli")
    docs = base / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text(
        "# Propeller slipstream\n\nThe slipstream of a propeller increases the lift of the wing "
        "behind it, depending on the ratio of slipstream to free-stream velocity.",
        encoding="utf-8",
    )
    (docs / "sub" / "b.txt").write_text("Buckling of thin cylindrical shells.", encoding="utf-8")
    (docs / "sub" / "c.txt").write_text("Creep of metals at high temperature.", encoding="utf-8")
    rows = [
        {"_id": "h1", "text": "heat transfer at Mach 5"},
        {"_id": "h2", "text": "skin friction"},
    ]
    (docs / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    store = base / "store"
    index = HybridIndex(store, embedder=minilm_embedder)
    index.add_files([docs], chunk_tokens=8, overlap=2)
    index.add(["a note added without a source"], ids=["loose"])
    return docs, store


@pytest.fixture
def copy(built, tmp_path) -> tuple[Path, Path]:
    """A copy of the module's store, free to change."""
    docs, store = built
    shutil.copytree(store, tmp_path / "store")
    return docs, tmp_path / "store"


def _run(capsys, store: Path, model: Path, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in (*argv, "--store", store, "--model", model)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _ids(store: Path, embedder) -> tuple[set[str], set[str]]:
    """The record ids in Chroma and in BM25, read by a fresh index (so from the snapshot)."""
    index = HybridIndex(store, embedder=embedder)
    return {hit.id for hit in index.get()}, set(index.bm25_index.ids)


def test_list_sources_table(built, capsys, minilm_dir, minilm_embedder):
    docs, store = built
    code, out, err = _run(capsys, store, minilm_dir, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["source", "docs", "records", "hash", "root"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert list(rows) == ["a.md", "p.jsonl", "sub/b.txt", "sub/c.txt"]  # sorted by source id
    a_chunks = [
        h for h in HybridIndex(store, embedder=minilm_embedder).get() if h.id[:5] == "a.md#"
    ]
    assert len(a_chunks) > 2
    assert rows["a.md"][1:3] == ["1", str(len(a_chunks))]
    assert rows["p.jsonl"][1:3] == ["2", "2"]
    assert len(rows["a.md"][3]) == 12 and rows["a.md"][4] == str(docs.resolve())
    assert lines[-1].startswith("1 records without a source")


def test_list_json_sources_and_records(built, capsys, minilm_dir, minilm_embedder):
    _, store = built
    index = HybridIndex(store, embedder=minilm_embedder)
    code, out, err = _run(capsys, store, minilm_dir, "list", "--json")
    assert code == 0, err
    sources = json.loads(out)  # stdout is the JSON alone
    assert [s["source"] for s in sources] == ["a.md", "p.jsonl", "sub/b.txt", "sub/c.txt"]
    assert set(sources[0]) == {"source", "root", "documents", "records", "hash", "chunking"}
    assert sources[0]["chunking"] == ["tokens=8,overlap=2"] and len(sources[0]["hash"]) == 64
    assert sum(s["records"] for s in sources) + 1 == index.count()
    assert "1 records without a source" in err

    code, out, err = _run(capsys, store, minilm_dir, "list", "--records", "--json")
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == index.count()
    assert records[-1] == {
        "id": "loose",
        "source": None,
        "doc_id": None,
        "chunk": None,
        "text": "a note added without a source",
    }
    keyed = [(r["source"], r["id"]) for r in records[:-1]]
    assert keyed == sorted(keyed)
    h1 = records[keyed.index(("p.jsonl", "h1"))]
    assert (h1["source"], h1["doc_id"], h1["chunk"]) == ("p.jsonl", "h1", 0)

    code, out, _ = _run(capsys, store, minilm_dir, "list", "--records")
    assert code == 0
    table = out.splitlines()
    assert table[0].split() == ["id", "source", "chunk", "text"]
    assert table[-1].split()[:3] == ["loose", "-", "-"] and len(table) == index.count() + 1


def test_stats_json(built, capsys, minilm_dir, minilm_embedder):
    _, store = built
    index = HybridIndex(store, embedder=minilm_embedder)
    code, out, err = _run(capsys, store, minilm_dir, "stats", "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["records"] == index.count() == stats["bm25"]["records"]
    assert (stats["sources"], stats["documents"], stats["records_without_source"]) == (4, 5, 1)
    assert stats["embedder"] == {"name": minilm_embedder.name, "dim": 384}
    assert stats["collection"] == "jinarag" and stats["store"] == str(store)
    assert stats["bm25"]["variant"] == "okapi" and stats["chunking"] == ["tokens=8,overlap=2"]
    on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    assert stats["size_bytes"] == on_disk > 0

    code, out, _ = _run(capsys, store, minilm_dir, "stats")
    assert code == 0
    assert f"{index.count()} records (Chroma: {index.count()}; equal)" in out


def test_delete_record_id(copy, capsys, minilm_dir, minilm_embedder):
    _, store = copy
    before, _ = _ids(store, minilm_embedder)
    code, out, err = _run(capsys, store, minilm_dir, "delete", "a.md#0")
    assert code == 0, err
    assert out.strip() == "deleted 1 records (1 sources)"
    chroma, bm25 = _ids(store, minilm_embedder)
    assert chroma == bm25 == before - {"a.md#0"}


def test_delete_document_id_takes_all_chunks(copy, capsys, minilm_dir, minilm_embedder):
    _, store = copy
    before, _ = _ids(store, minilm_embedder)
    chunks = {i for i in before if i.startswith("a.md#")}
    code, out, err = _run(capsys, store, minilm_dir, "delete", "a.md", "h1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report == {
        "deleted": len(chunks) + 1,
        "ids": sorted(chunks | {"h1"}),
        "sources": ["a.md", "p.jsonl"],
    }
    chroma, bm25 = _ids(store, minilm_embedder)
    assert chroma == bm25 == before - chunks - {"h1"}


@pytest.mark.parametrize(
    ("how", "gone"),
    [
        ("id", {"sub/b.txt"}),  # the stored source id
        ("relative path", {"a.md"}),  # a file on disk, relative to the working folder
        ("folder", {"sub/b.txt", "sub/c.txt"}),  # every source under an absolute folder
    ],
)
def test_delete_by_source(copy, capsys, minilm_dir, minilm_embedder, monkeypatch, how, gone):
    docs, store = copy
    monkeypatch.chdir(docs.parent)
    path = {"id": "sub/b.txt", "relative path": "docs/a.md", "folder": str(docs / "sub")}[how]
    before, _ = _ids(store, minilm_embedder)
    removed = {
        h.id
        for h in HybridIndex(store, embedder=minilm_embedder).get()
        if h.metadata.get("source") in gone
    }
    code, out, err = _run(capsys, store, minilm_dir, "delete", "--source", path)
    assert code == 0, err
    assert out.strip() == f"deleted {len(removed)} records ({len(gone)} sources)"
    chroma, bm25 = _ids(store, minilm_embedder)
    assert chroma == bm25 == before - removed


def test_delete_a_source_of_another_root_by_its_path(copy, capsys, minilm_dir, minilm_embedder):
    docs, store = copy
    other = docs.parent / "other"
    other.mkdir(exist_ok=True)
    (other / "a.md").write_text("Another a.md about gliders.", encoding="utf-8")
    index = HybridIndex(store, embedder=minilm_embedder)
    with pytest.raises(InputError, match="would replace the records of 'a.md'"):
        index.add_files([other])  # the same id from another root is refused at indexing
    index.add_files([other], root=docs.parent)  # stored as other/a.md
    before, _ = _ids(store, minilm_embedder)
    code, out, err = _run(capsys, store, minilm_dir, "delete", "--source", other / "a.md")
    assert code == 0, err
    assert out.strip() == "deleted 1 records (1 sources)"
    chroma, bm25 = _ids(store, minilm_embedder)
    assert before - chroma == {"other/a.md"} and chroma == bm25
    assert any(i.startswith("a.md#") for i in chroma)  # docs/a.md is untouched


def test_delete_unknown_names_deletes_nothing(copy, capsys, minilm_dir, minilm_embedder):
    _, store = copy
    before, _ = _ids(store, minilm_embedder)
    code, out, err = _run(
        capsys, store, minilm_dir, "delete", "a.md#0", "nope", "--source", "sub/zz.txt"
    )
    assert code == 1 and out == ""
    assert "no record or document with id 'nope'" in err
    assert "--source 'sub/zz.txt'" in err and "jinarag list" in err
    assert "a.md#0" not in err  # a name that matched is not reported
    chroma, bm25 = _ids(store, minilm_embedder)
    assert chroma == bm25 == before

    code, _, err = _run(capsys, store, minilm_dir, "delete")
    assert code == 1 and "jinarag delete ID" in err and "--source PATH" in err


def test_search_json_matches_the_index(built, capsys, minilm_dir, minilm_embedder):
    _, store = built
    index = HybridIndex(store, embedder=minilm_embedder)
    code, out, err = _run(
        capsys, store, minilm_dir, "search", "propeller slipstream", "--k", "3", "--json"
    )
    assert code == 0, err
    hits = json.loads(out)
    expected = index.search("propeller slipstream", k=3)
    assert [h["id"] for h in hits] == [h.id for h in expected]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected])
    assert [h["rank"] for h in hits] == [1, 2, 3]
    first = hits[0]
    assert first["score_space"] == expected[0].score_space and first["rerank"] is None
    assert first["metadata"] == expected[0].metadata and first["text"] == expected[0].text
    assert first["dense"] == {
        "rank": expected[0].dense.rank,
        "score": pytest.approx(expected[0].dense.score),
    }

    code, out, _ = _run(capsys, store, minilm_dir, "search", "zeppelin", "--mode", "bm25", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize("command", ["list", "stats", "delete x", "search q --json"])
def test_missing_store(tmp_path, capsys, minilm_dir, command):
    code, out, err = _run(capsys, tmp_path / "none", minilm_dir, *command.split())
    assert code == 1 and out == "" and "no index at" in err
