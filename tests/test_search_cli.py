"""`jinarag index`, `jinarag search` and `jinarag eval`, run through the real entry point."""

from __future__ import annotations

import json
import re

import pytest

from jinarag.cli import main
from jinarag.errors import InputError
from jinarag.evaluation import evaluate, load_beir, select_queries
from jinarag.retrieval.index import DEFAULT_FUSION, HybridIndex


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "notes").mkdir(parents=True)
    (folder / "slipstream.md").write_text(
        "# Propeller slipstream\n\nThe slipstream of a propeller increases the lift of the wing "
        "behind it. The increase depends on the ratio of slipstream to free-stream velocity and "
        "on the angle of attack of the wing.",
        encoding="utf-8",
    )
    (folder / "notes" / "shells.txt").write_text(
        "Buckling of thin cylindrical shells under axial compression.", encoding="utf-8"
    )
    rows = [
        {
            "_id": "h1",
            "title": "Heat",
            "text": "heat transfer to a blunt body at Mach 5",
            "year": 1960,
        },
        {"_id": "h2", "text": "skin friction on a flat plate in a wind tunnel", "year": 1955},
    ]
    (folder / "papers.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return folder


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _table_ids(out: str) -> list[str]:
    return [line.split()[4] for line in out.splitlines() if re.match(r"\s+\d+\s+-?\d", line)]


def test_index_then_search(docs, tmp_path, capsys, minilm_dir, minilm_embedder):
    store = tmp_path / "store"
    code, out, err = _run(
        capsys, "index", docs, "--store", store, "--model", minilm_dir,
        "--chunk-tokens", "16", "--overlap", "4", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    index = HybridIndex(store, embedder=minilm_embedder)
    chunks = [h for h in index.get() if h.metadata["doc_id"].endswith("slipstream.md")]
    assert len(chunks) > 2 and all(h.id.startswith(h.metadata["doc_id"] + "#") for h in chunks)
    assert out.startswith("added 3, updated 0, unchanged 0, removed 0, skipped 0; ")
    assert f"{index.count()} chunks written, 0 removed; the index holds {index.count()}" in out
    assert index.get(["h1"])[0].metadata["year"] == 1960

    code, out, err = _run(capsys, "search", "propeller slipstream lift", "--store", store,
                          "--model", minilm_dir, "--k", "3")  # fmt: skip
    assert code == 0, err
    assert f"score = {DEFAULT_FUSION}" in out and len(_table_ids(out)) == 3
    assert re.fullmatch(r"slipstream\.md#\d", _table_ids(out)[0])

    code, out, _ = _run(capsys, "search", "heat friction", "--store", store, "--model", minilm_dir,
                        "--mode", "bm25", "--where", '{"year": 1955}')  # fmt: skip
    assert code == 0 and _table_ids(out) == ["h2"] and "score = bm25" in out

    code, out, _ = _run(capsys, "search", "zeppelin", "--store", store, "--model", minilm_dir,
                        "--mode", "bm25")  # fmt: skip
    assert code == 0 and out.strip() == "no results"


def test_reindexing_removes_stale_chunks(docs, tmp_path, capsys, minilm_dir, minilm_embedder):
    store = tmp_path / "store"
    args = ["index", docs, "--store", store, "--model", minilm_dir, "--chunk-tokens", "16",
            "--overlap", "2", "--quiet"]  # fmt: skip
    assert _run(capsys, *args)[0] == 0
    before = HybridIndex(store, embedder=minilm_embedder).count()
    (docs / "slipstream.md").write_text("A short note on slipstreams.", encoding="utf-8")
    code, out, _ = _run(capsys, *args)
    assert code == 0
    assert re.match(r"added 0, updated 1, unchanged 2, removed 0, .* [1-9]\d* removed;", out)
    index = HybridIndex(store, embedder=minilm_embedder)
    md = [h for h in index.get() if h.metadata["doc_id"].endswith("slipstream.md")]
    assert [h.text for h in md] == ["A short note on slipstreams."]
    assert index.count() < before
    assert set(index.bm25_index.ids) == {h.id for h in index.get()}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "q", "--store", "{tmp}/none"], "no index at"),
        (["search", "q", "--store", "{tmp}", "--where", "{bad"], "--where must be JSON"),
        (["search", "q", "--store", "{tmp}", "--weights", "a,b"], "--weights must be two numbers"),
        (["search", "q", "--chroma-url", "http://127.0.0.1:9"], "http://127.0.0.1:9"),
        (["index", "{tmp}/file.pdf"], "unsupported file type '.pdf'"),
        (["index", "{tmp}/missing"], "no such file or folder"),
        (["eval", "{tmp}"], "is not a BEIR dataset folder"),
    ],
)
def test_errors_exit_1_with_a_message(argv, message, tmp_path, capsys, minilm_dir):
    (tmp_path / "file.pdf").write_bytes(b"%PDF")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--model", str(minilm_dir)]
    code, _, err = _run(capsys, *argv)
    assert code == 1
    assert err.splitlines()[-1].startswith("jinarag: error:") and message in err


def _rows(out: str) -> dict[str, list[float]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and re.fullmatch(r"[\d.]+", cells[1]):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


@pytest.mark.slow
def test_eval_prints_the_table(cranfield_dir, cranfield_index, minilm_dir, capsys):
    code, out, err = _run(
        capsys, "eval", cranfield_dir, "--store", cranfield_index.path, "--model", minilm_dir,
        "--no-rerank", "--queries", "even", "--limit", "8",
    )  # fmt: skip
    assert code == 0, err
    assert "cranfield: 1400 documents" in out and "8 even queries" in out
    rows = _rows(out)
    assert list(rows) == ["bm25", "dense", "hybrid rrf", "hybrid relative", "hybrid dbsf"]
    dataset = load_beir(cranfield_dir)
    expected = evaluate(cranfield_index, dataset, query_ids=select_queries(dataset, "even")[:8])
    for row in expected:
        metrics = (row.ndcg10, row.recall100, row.map, row.mrr, row.p10)
        assert rows[row.label][:5] == [round(m, 4) for m in metrics]


@pytest.mark.slow
def test_eval_adds_a_rerank_row(
    cranfield_dir, cranfield_index, minilm_dir, minilm_reranker_dir, capsys
):
    code, out, err = _run(
        capsys, "eval", cranfield_dir, "--store", cranfield_index.path, "--model", minilm_dir,
        "--reranker", minilm_reranker_dir, "--limit", "2",
    )  # fmt: skip
    assert code == 0, err
    rows = _rows(out)
    assert list(rows)[-1] == "hybrid + rerank" and len(rows) == 6
    assert 0.0 <= rows["hybrid + rerank"][0] <= 1.0


@pytest.mark.slow
def test_eval_writes_json_and_shows_progress(
    cranfield_dir, cranfield_index, minilm_dir, capsys, tmp_path
):
    output = tmp_path / "eval.json"
    code, out, err = _run(
        capsys, "eval", cranfield_dir, "--store", cranfield_index.path, "--model", minilm_dir,
        "--no-rerank", "--limit", "4", "--format", "json", "--output", output,
    )  # fmt: skip
    assert code == 0, err
    assert out == ""  # the result went to the file
    # A line per configuration on stderr, also when stderr is not a terminal.
    for label in ("bm25", "dense", "hybrid rrf", "hybrid relative", "hybrid dbsf"):
        assert f"eval: cranfield: {label}\n" in err
    report = json.loads(output.read_text())["cranfield"]
    assert report["queries"] == "all" and "1400 documents" in report["summary"]
    assert [r["label"] for r in report["rows"]][:2] == ["bm25", "dense"]
    assert all(r["queries"] == 4 and 0 <= r["ndcg10"] <= 1 for r in report["rows"])


@pytest.mark.slow
def test_eval_tune_ranks_by_the_worst_case_over_datasets(
    cranfield_dir, cranfield_index, cacm_dir, cacm_index, minilm_dir, capsys, tmp_path
):
    stores = tmp_path / "stores"
    stores.mkdir()
    (stores / "cranfield").symlink_to(cranfield_index.path)
    (stores / "cacm").symlink_to(cacm_index.path)
    code, out, err = _run(
        capsys, "eval", cranfield_dir, cacm_dir, "--tune", "--store", stores,
        "--model", minilm_dir, "--limit", "6",
    )  # fmt: skip
    assert code == 0, err
    assert "cranfield: 1400 documents" in out and "cacm: 3204 documents" in out
    assert "| worst gain | worst nDCG@10 | cranfield nDCG@10 (gain) | cacm nDCG@10 (gain) |" in out
    assert "\ndefaults: {'weights':" in out


@pytest.mark.slow
def test_tune_writes_settings_that_the_index_reads(
    cranfield_dir, cranfield_index, minilm_dir, minilm_embedder, capsys, tmp_path
):
    settings = tmp_path / "fusion.json"
    code, out, err = _run(
        capsys, "tune", cranfield_dir, "--store", cranfield_index.path, "--collection", "beir",
        "--output", settings, "--model", minilm_dir, "--queries", "odd", "--limit", "8",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(settings.read_text())
    assert payload["format"] == "jinarag-fusion/1"
    assert payload["tuned_on"]["queries"] == "8 odd"
    assert f"wrote {settings}: fusion {payload['fusion']}" in out
    assert "fitted on 8 queries only" in err  # too few to trust: a note says so
    # Beside a store, the file sets the index's fusion defaults; explicit arguments still win.
    store = tmp_path / "store"
    store.mkdir()
    (store / "jinarag-fusion.json").write_text(settings.read_text())
    with HybridIndex(store, embedder=minilm_embedder) as index:
        assert (index.fusion, index.rrf_k, index.candidates) == (
            payload["fusion"],
            payload["rrf_k"],
            payload["candidates"],
        )
        assert list(index.method_weights[index.fusion]) == payload["weights"][index.fusion]
    with HybridIndex(store, embedder=minilm_embedder, fusion="relative", candidates=7) as index:
        assert (index.fusion, index.candidates) == ("relative", 7)
    (store / "jinarag-fusion.json").write_text("{}")
    with pytest.raises(InputError, match="is not a usable fusion settings file.*jinarag tune"):
        HybridIndex(store, embedder=minilm_embedder)
    code, out, err = _run(capsys, "tune", cranfield_dir, "--model", minilm_dir)
    assert code == 1 and "--store DIR" in err and "--output FILE" in err
