"""A folder kept in step with its index: stable ids, unchanged files skipped, changes replaced,
deleted files removed with --sync, skipped files named, JSON summaries, two writers at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jinarag.cli import main
from jinarag.errors import InputError
from jinarag.retrieval.index import HybridIndex
from jinarag.retrieval.ingest.readers import html_text

ENV = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false"}


def _max_seq(path: Path) -> int:
    """The highest sequence number Chroma gave a record write (grows with every write)."""
    uri = f"{path.resolve().as_uri()}/chroma.sqlite3?mode=ro"
    with sqlite3.connect(uri, uri=True) as con:
        return int(con.execute("SELECT max(seq_id) FROM embeddings").fetchone()[0] or 0)


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("Lift grows with the angle of attack.", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("Heat flux at Mach 5 on a blunt body.", "utf-8")
    (folder / "page.html").write_text(
        "<html><head><title>Shells</title><style>p {}</style></head><body><h1>Buckling</h1>"
        "<p>Thin shells buckle under <b>axial</b> load.</p><script>track()</script></body></html>",
        encoding="utf-8",
    )
    rows = [{"_id": "j1", "text": "skin friction on a plate"}, {"_id": "j2", "text": "wakes"}]
    (folder / "papers.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n", "utf-8")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    (folder / ".hidden.md").write_text("never indexed", encoding="utf-8")
    return folder


@pytest.fixture
def index(tmp_path, minilm_embedder):
    return HybridIndex(tmp_path / "store", embedder=minilm_embedder)


def _ids(index: HybridIndex) -> list[str]:
    return sorted(h.id for h in index.get())


def _consistent(index: HybridIndex) -> None:
    fresh = HybridIndex(index.path, embedder=index.embedder)  # BM25 as saved on disk
    assert sorted(fresh.bm25_index.ids) == _ids(index) == sorted(index.bm25_index.ids)


def test_the_same_folder_typed_three_ways_is_one_copy(tiny, index, monkeypatch):
    first = index.add_files([tiny])
    assert sorted(first.added) == ["a.md", "page.html", "papers.jsonl", "sub/b.txt"]
    assert [(Path(s.path).name, s.reason) for s in first.skipped] == [
        ("scan.pdf", "unsupported type .pdf")
    ]
    ids = _ids(index)
    assert ids == ["a.md", "j1", "j2", "page.html", "sub/b.txt"]
    seq = _max_seq(index.path)
    again = index.add_files([tiny.resolve()])
    monkeypatch.chdir(tiny)
    third = index.add_files(["."])
    monkeypatch.chdir(tiny / "sub")
    fourth = index.add_files([".."])
    for report in (again, third, fourth):
        assert sorted(report.unchanged) == sorted(first.added)
        assert (report.added, report.updated, report.chunks_written) == ([], [], 0)
    assert _ids(index) == ids and _max_seq(index.path) == seq  # nothing written again
    hit = index.get(["sub/b.txt"])[0]
    assert hit.metadata == {
        "source": "sub/b.txt",
        "doc_id": "sub/b.txt",
        "chunk": 0,
        "span_start": 0,
        "span_end": len(hit.text),
    }
    assert index.get(["j1"])[0].metadata["source"] == "papers.jsonl"
    _consistent(index)


def test_html_is_read_as_text(tiny, index):
    index.add_files([tiny])
    page = index.get(["page.html"])[0].text
    assert page == "Buckling\nThin shells buckle under axial load."  # main content, h1 as title
    assert "track" not in page and "{}" not in page
    assert html_text("<p>a &amp; b</p><noscript>no</noscript>") == "a & b"


def test_change_add_delete_and_rename(tiny, index):
    index.add_files([tiny])
    (tiny / "a.md").write_text("Lift falls after the stall.", encoding="utf-8")
    (tiny / "sub" / "b.txt").rename(tiny / "sub" / "c.txt")
    (tiny / "new.md").write_text("Flutter of a wing.", encoding="utf-8")
    lines = [{"_id": "j1", "text": "skin friction on a plate"}, {"_id": "j3", "text": "gusts"}]
    (tiny / "papers.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n", "utf-8")

    report = index.add_files([tiny])  # without sync, the renamed file's old copy stays
    assert sorted(report.added) == ["new.md", "sub/c.txt"]
    assert sorted(report.updated) == ["a.md", "papers.jsonl"]
    assert report.unchanged == ["page.html"]
    assert report.missing == ["sub/b.txt"] and report.removed == []
    # Of the JSONL file only the new line was embedded; j2, gone from it, was removed.
    assert report.chunks_written == 1 + 1 + 1 + 1 and report.chunks_removed == 1
    assert "j2" not in _ids(index) and index.get(["a.md"])[0].text.startswith("Lift falls")
    assert "sub/b.txt" in _ids(index)

    synced = index.add_files([tiny], sync=True)
    assert synced.removed == ["sub/b.txt"] and synced.chunks_written == 0
    assert sorted(synced.unchanged) == ["a.md", "new.md", "page.html", "papers.jsonl", "sub/c.txt"]
    assert _ids(index) == ["a.md", "j1", "j3", "new.md", "page.html", "sub/c.txt"]
    assert index.search("gusts", k=1, mode="bm25")[0].id == "j3"
    assert [h.id for h in index.search("blunt body Mach", k=5, mode="bm25")] == ["sub/c.txt"]
    _consistent(index)
    # The kept line took the new file's hash: a third run finds everything unchanged.
    assert index.add_files([tiny], sync=True).unchanged == synced.unchanged


def test_sync_removes_only_within_the_folders_given(tiny, index, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "z.md").write_text("Zeppelins float.", encoding="utf-8")
    index.add_files([tiny])
    index.add_files([other])
    (tiny / "a.md").unlink()
    report = index.add_files([tiny / "sub"], root=tiny, sync=True)
    assert report.unchanged == ["sub/b.txt"] and report.removed == []  # a.md is outside sub/
    report = index.add_files([tiny], sync=True)
    assert report.removed == ["a.md"]
    assert "z.md" in _ids(index)  # another root's source is not this folder's to remove


def test_chunk_settings_changing_reindexes(tiny, index):
    index.add_files([tiny])
    report = index.add_files([tiny], chunk_tokens=4, overlap=1)
    assert len(report.updated) == 4 and report.chunks_written > 5
    ids = _ids(index)
    assert "a.md#0" in ids and "a.md" not in ids  # the one-chunk record was replaced
    late = index.add_files([tiny], chunking="late", chunk_tokens=4)
    assert len(late.updated) == 4
    assert all("#" in i for i in _ids(index))  # late chunks are always numbered
    assert index.add_files([tiny], chunking="late", chunk_tokens=4).chunks_written == 0
    _consistent(index)


def test_a_run_stopped_by_a_bad_file_is_finished_by_running_it_again(tiny, index):
    (tiny / "zz.jsonl").write_text('{"_id": "z1", "text": "fine"}\nnot json\n', "utf-8")
    with pytest.raises(InputError, match=r"zz\.jsonl:2 is not valid JSON"):
        index.add_files([tiny])
    (tiny / "zz.jsonl").write_text('{"_id": "z1", "text": "fine"}\n', "utf-8")
    report = index.add_files([tiny])
    assert "zz.jsonl" in report.added
    assert _ids(index) == ["a.md", "j1", "j2", "page.html", "sub/b.txt", "z1"]
    _consistent(index)


def test_bad_paths_roots_and_collisions_are_named(tiny, index, tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        index.add_files([tiny / "missing"])
    with pytest.raises(InputError, match="is outside --root"):
        index.add_files([tiny], root=tiny / "sub")
    with pytest.raises(InputError, match="unsupported file type '.pdf'"):
        index.add_files([tiny / "scan.pdf"])
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "a.md").write_text("another a", encoding="utf-8")
    with pytest.raises(InputError, match=r"would both be stored as 'a\.md'.*--root"):
        index.add_files([tiny, twin])
    assert index.count() == 0  # refused before anything was written
    report = index.add_files([tiny, twin], root=tmp_path)
    assert {"tiny/a.md", "twin/a.md"} <= set(report.added)
    with pytest.raises(InputError, match="overlap 3 does not apply to late chunking"):
        index.add_files([tiny], chunking="late", overlap=3)
    with pytest.raises(InputError, match="does not fit"):
        index.add_files([tiny], chunk_tokens=10_000)


def test_the_store_inside_the_folder_is_not_indexed(tiny, minilm_embedder):
    inside = HybridIndex(tiny / "store", embedder=minilm_embedder)
    report = inside.add_files([tiny])
    assert all(Path(s.path).relative_to(tiny).parts[0] != "store" for s in report.skipped)
    assert report.added and all(not s.startswith("store/") for s in report.added)


def test_cli_json_summary_and_sync(tiny, tmp_path, minilm_dir, capsys):
    argv = ["index", str(tiny), "--store", str(tmp_path / "store"), "--model", str(minilm_dir)]
    assert main([*argv, "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["added"]) == ["a.md", "page.html", "papers.jsonl", "sub/b.txt"]
    assert out["skipped"] == [{"path": str(tiny / "scan.pdf"), "reason": "unsupported type .pdf"}]
    assert out["records"] == out["chunks_written"] == 5 and out["removed"] == []
    (tiny / "a.md").unlink()
    assert main([*argv, "--sync"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == [
        "added 0, updated 0, unchanged 3, removed 1, skipped 1 (unsupported type .pdf: 1); "
        f"0 chunks written, 1 removed; the index holds 4 records ({lines[0].split('(')[-1]}"
    ]
    assert "indexing" not in captured.err  # nothing to embed: no progress bar
    (tiny / "c.md").write_text("# C\n\nA new page about flutter.\n")
    assert main([*argv, "--sync"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("added 1, updated 0, unchanged 3, removed 0")
    assert "indexing" in captured.err  # work to do: the progress bar, on stderr


def test_cli_refuses_bad_options_before_loading(tiny, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["index", str(tiny), "--store", str(store), "--ray-actors", "3"]) == 1
    assert "--ray-actors 3 applies to Ray runs only" in capsys.readouterr().err
    assert main(["index", str(tiny / "nope"), "--store", str(store)]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert not store.exists()


_INDEXER = """
import sys
from jinarag.cli import main
sys.exit(main(["index", sys.argv[1], "--store", sys.argv[2], "--model", sys.argv[3], "--sync",
               "--quiet", "--batch", "8", "--chunk-tokens", "16"]))
"""


@pytest.mark.slow
def test_two_indexing_runs_at_once_lose_nothing(tmp_path, minilm_dir, minilm_embedder):
    store = tmp_path / "store"
    folders = []
    for name in ("left", "right"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(12):
            words = " ".join(f"{name} note {i} on wing {j} and gust {i * j}" for j in range(6))
            (folder / f"{name}{i}.md").write_text(words, encoding="utf-8")
        folders.append(folder)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _INDEXER, str(folder), str(store), str(minilm_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        for folder in folders
    ]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    index = HybridIndex(store, embedder=minilm_embedder)
    sources = {h.metadata["source"] for h in index.get()}
    assert sources == {f"{name}{i}.md" for name in ("left", "right") for i in range(12)}
    assert {Path(r).name for r in _roots(store)} == {"left", "right"}  # neither removed
    report = index.verify()
    assert report.healthy and report.bm25_mismatches == 0
    again = index.add_files([folders[0]], sync=True, chunk_tokens=16)  # the CLI's settings
    assert len(again.unchanged) == 12 and again.chunks_written == 0


def test_the_same_id_from_another_root_is_refused_not_overwritten(tiny, index, tmp_path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "a.md").write_text("another a", encoding="utf-8")
    index.add_files([tiny])
    with pytest.raises(InputError, match=r"'a\.md' under .*twin would replace.*--root"):
        index.add_files([twin])
    assert index.get(["a.md"])[0].text == "Lift grows with the angle of attack."
    (twin / "a.md").unlink()
    (twin / "more.jsonl").write_text('{"_id": "j1", "text": "a clash"}\n', "utf-8")
    with pytest.raises(InputError, match=r"record id 'j1' of 'more\.jsonl' is already held"):
        index.add_files([twin])
    assert index.get(["j1"])[0].text == "skin friction on a plate"
    _consistent(index)


def _roots(store: Path) -> set[str]:
    uri = f"{store.resolve().as_uri()}/chroma.sqlite3?mode=ro"
    with sqlite3.connect(uri, uri=True) as con:
        rows = con.execute(
            "SELECT DISTINCT string_value FROM embedding_metadata WHERE key = 'jinarag:root'"
        ).fetchall()
    return {r[0] for r in rows}


def test_records_of_an_older_layout_are_taken_over_not_kept_twice(tiny, index, monkeypatch):
    # What an older `jinarag index tiny` wrote: ids and sources as the path was typed.
    monkeypatch.chdir(tiny.parent)
    index.add(
        ["Lift grows with the angle of attack.", "skin friction on a plate", "an API record"],
        ids=["tiny/a.md", "j1", "mine"],
        metadatas=[
            {"source": "tiny/a.md", "doc_id": "tiny/a.md", "chunk": 0},
            {"source": "tiny/papers.jsonl", "doc_id": "j1", "chunk": 0},
            {"source": "notes.md", "doc_id": "mine", "chunk": 0},  # no such file: not ours
        ],
    )
    report = index.add_files([tiny], sync=True)
    assert sorted(report.updated) == ["a.md", "papers.jsonl"]
    assert _ids(index) == ["a.md", "j1", "j2", "mine", "page.html", "sub/b.txt"]
    assert index.get(["j1"])[0].metadata["source"] == "papers.jsonl"
    assert index.add_files([tiny], sync=True).chunks_written == 0
    _consistent(index)
