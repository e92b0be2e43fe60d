"""BM25: the tokenizer, parity with rank-bm25, filters, the bm25s backend, snapshots."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import rank_bm25

from jinarag.errors import InputError
from jinarag.retrieval.keyword.bm25 import ENGLISH_STOPWORDS, BM25Index, Tokenizer, tokenize
from jinarag.retrieval.keyword.snapshot import atomic_write

DOCS = [
    "The wing stalls at a high angle of attack.",
    "Supersonic flow over a swept wing.",
    "Boundary layer transition on a flat plate at Mach 3.",
    "Heat transfer in the hypersonic boundary layer.",
    "Propeller slipstream and the lift of a wing.",
    "Flutter of a cantilever plate in supersonic flow.",
    "Buckling of thin cylindrical shells under axial load.",
    "Skin friction measured on a flat plate.",
    "",
    "Shock waves and the sonic boom.",
    "The drag of slender cones at hypersonic speeds.",
    "Creep buckling of columns.",
]
IDS = [f"d{i}" for i in range(len(DOCS))]


def _index(**options) -> BM25Index:
    index = BM25Index(**options)
    index.upsert(IDS, DOCS)
    return index


def test_tokenizer_rules():
    assert tokenize("Mach-2.5 WINGS, at_the Tip") == ["mach", "2", "5", "wings", "at", "the", "tip"]
    assert tokenize("Überschall-Flügel ﬁle") == ["überschall", "flügel", "file"]  # NFKC + casefold
    assert tokenize("STRASSE straße") == ["strasse", "strasse"]
    assert tokenize("  ,;  ") == []
    assert Tokenizer("english")("The drag OF a cone") == ["drag", "cone"]
    assert Tokenizer(["Drag"])("the drag of a cone") == ["the", "of", "a", "cone"]
    assert {"the", "of", "a"} <= ENGLISH_STOPWORDS and "wing" not in ENGLISH_STOPWORDS
    with pytest.raises(InputError, match="stopwords must be None, 'english'"):
        Tokenizer("french")  # type: ignore[arg-type]


def test_stemming():
    stem = Tokenizer(stopwords="english", stemmer="english")
    assert stem("The Flows over swept WINGS, and flowing") == ["flow", "swept", "wing", "flow"]
    assert Tokenizer(stemmer="english")("the wings") == ["the", "wing"]  # stopwords stay off
    assert Tokenizer(stemmer="porter")("generalizations") == ["gener"]
    assert Tokenizer()("wings") == ["wings"]  # no stemming unless asked
    assert stem.spec() == {"stopwords": "english", "stemmer": "english"}
    assert Tokenizer().spec() == {"stopwords": None, "stemmer": None}
    with pytest.raises(InputError, match=r"stemmer must be None or a Snowball stemmer name.*'eng'"):
        Tokenizer(stemmer="eng")
    with pytest.raises(InputError, match="stemmer must be None"):
        Tokenizer(stemmer=True)  # type: ignore[arg-type]
    # Documents and queries go through the same analyser: a plural query finds the singular.
    index = BM25Index(tokenizer=stem)
    index.upsert(["a", "b", "c"], ["a swept wing", "heat flux", "thin shells"])
    assert [d for d, _ in index.search("wings", k=3)] == ["a"]


def test_snapshot_made_with_another_stemmer_is_not_reused(tmp_path):
    path = tmp_path / "bm25.json"
    stemmed = BM25Index(tokenizer=Tokenizer("english", "english"))
    stemmed.upsert(["a"], ["swept wings"])
    stemmed.save(path, {"generation": "g"})
    assert BM25Index(tokenizer=Tokenizer("english")).load(path) is None
    restored = BM25Index(tokenizer=Tokenizer("english", "english"))
    assert restored.load(path) == {"generation": "g"}
    assert restored.tokens("a") == ["swept", "wing"]


@pytest.mark.parametrize(
    ("variant", "cls", "options"),
    [
        ("okapi", rank_bm25.BM25Okapi, {}),
        ("okapi", rank_bm25.BM25Okapi, {"k1": 0.9, "b": 0.4, "epsilon": 0.5}),
        ("bm25l", rank_bm25.BM25L, {"delta": 0.3}),
        ("bm25plus", rank_bm25.BM25Plus, {"k1": 2.0, "delta": 0.7}),
    ],
)
def test_scores_equal_rank_bm25(variant, cls, options):
    index = _index(variant=variant, **options)
    reference = cls([tokenize(d) for d in DOCS], **options)
    for query in ["supersonic wing", "flat plate boundary layer", "hypersonic cones drag"]:
        scores = reference.get_scores(tokenize(query))
        terms = set(tokenize(query))
        # Hits: documents sharing a term with the query, with a positive score, best first.
        expected = sorted(
            ((IDS[i], s) for i, s in enumerate(scores) if s > 0 and terms & set(tokenize(DOCS[i]))),
            key=lambda item: (-item[1], IDS.index(item[0])),
        )
        got = index.search(query, k=len(DOCS))
        assert [d for d, _ in got] == [d for d, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected])


def test_documents_without_query_terms_are_not_hits_even_for_bm25plus():
    # BM25+ gives every document a positive score; only matching ones are results.
    got = _index(variant="bm25plus").search("buckling", k=100)
    assert sorted(d for d, _ in got) == ["d11", "d6"]


def test_k_and_empty_cases():
    index = _index()
    assert len(index.search("plate", k=2)) == 2
    assert len(index.search("plate", k=100)) == 3  # k beyond the matches: all there is
    assert index.search("zeppelin", k=5) == []
    assert index.search("", k=5) == []
    assert index.search("plate", k=0) == []
    assert BM25Index().search("anything") == []
    only_empty = BM25Index()
    only_empty.upsert(["e"], ["  "])
    assert only_empty.search("anything") == []


def test_filter_applies_before_ranking():
    index = _index()
    everything = index.search("plate flow", k=100)
    allowed = {d for d, _ in everything[2:]} | {"d0", "nope"}
    top2 = index.search("plate flow", k=2, allowed=allowed)
    # k results come back although the unfiltered top 2 are both excluded ...
    assert [d for d, _ in top2] == [d for d, _ in everything[2:4]]
    # ... with the same scores (statistics stay those of the whole corpus).
    assert [s for _, s in top2] == pytest.approx([s for _, s in everything[2:4]])
    assert index.search("plate", k=5, allowed=set()) == []


def test_upsert_replaces_and_delete_removes():
    index = _index()
    assert "d1" in dict(index.search("swept", k=5))
    index.upsert(["d1"], ["Nothing about geometry here."])
    assert "d1" not in dict(index.search("swept", k=5))
    assert index.tokens("d1") == ["nothing", "about", "geometry", "here"]
    index.delete(["d2", "unknown"])
    assert "d2" not in index.ids and len(index) == len(DOCS) - 1
    assert all(d != "d2" for d, _ in index.search("transition mach", k=10))
    with pytest.raises(InputError, match="2 ids for 1 token lists"):
        index.upsert_tokens(["a", "b"], [["x"]])


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="choose one of okapi, bm25l, bm25plus"):
        BM25Index("bm26")
    with pytest.raises(InputError, match="choose one of auto, rank_bm25, bm25s"):
        BM25Index(backend="lucene")
    with pytest.raises(InputError, match="epsilon applies to variant 'okapi'"):
        BM25Index("bm25l", epsilon=0.1)
    with pytest.raises(InputError, match="delta applies to variants"):
        BM25Index("okapi", delta=0.5)
    with pytest.raises(InputError, match="k1 must be a number of at least 0, got -1"):
        BM25Index(k1=-1)
    with pytest.raises(InputError, match="b must be a number between 0 and 1, got 5"):
        BM25Index(b=5)


def test_auto_backend_moves_to_bm25s_on_large_corpora(monkeypatch):
    import jinarag.retrieval.keyword.bm25 as bm25_module

    pytest.importorskip("bm25s")
    index = _index(variant="bm25plus")
    assert index.backend == "auto" and index.scorer_backend == "rank_bm25"
    slow = index.search("supersonic wing", k=5)
    # A smaller threshold stands in for a corpus of 20,000 records.
    monkeypatch.setattr(bm25_module, "AUTO_BM25S_RECORDS", len(index))
    assert index.scorer_backend == "bm25s"
    index.upsert(["new"], ["a supersonic wing at Mach 3"])  # rebuilds the scorer
    fast = _index(variant="bm25plus", backend="bm25s")
    fast.upsert(["new"], ["a supersonic wing at Mach 3"])
    assert index.search("supersonic wing", k=5) == fast.search("supersonic wing", k=5)
    assert [d for d, _ in slow] == [
        d for d, _ in index.search("supersonic wing", k=6) if d != "new"
    ]
    with_epsilon = _index(epsilon=0.1)
    assert with_epsilon.scorer_backend == "rank_bm25"  # only rank-bm25 has Okapi's idf floor
    assert _index(variant="bm25l").scorer_backend == "rank_bm25"  # bm25s's BM25L differs


def test_bm25s_backend_same_api():
    pytest.importorskip("bm25s")
    fast, slow = _index(variant="bm25plus", backend="bm25s"), _index(variant="bm25plus")
    for query in ["supersonic wing", "flat plate", "hypersonic drag of cones"]:
        a, b = fast.search(query, k=5), slow.search(query, k=5)
        assert [d for d, _ in a] == [d for d, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5)
    okapi = _index(backend="bm25s")
    # Rare terms: Robertson idf (bm25s) and rank-bm25's Okapi idf agree when no floor applies;
    # bm25s leaves out the constant factor (k1 + 1), so the ranking is the same.
    a, b = okapi.search("slender cones skin", k=5), _index().search("slender cones skin", k=5)
    assert [d for d, _ in a] == [d for d, _ in b] == ["d10", "d7"]
    assert np.array([s for _, s in b]) / [s for _, s in a] == pytest.approx([2.5, 2.5], rel=1e-5)
    filtered = okapi.search("plate", k=5, allowed={"d7"})
    assert [d for d, _ in filtered] == ["d7"]


def test_snapshot_round_trip(tmp_path):
    index = _index(tokenizer=Tokenizer("english"))
    path = tmp_path / "snap" / "bm25.json"
    state = {"count": len(DOCS), "generation": "g1"}
    index.save(path, state)
    restored = BM25Index(tokenizer=Tokenizer("english"))
    assert restored.load(path) == state
    assert restored.ids == index.ids
    for query in ["supersonic wing", "boundary layer"]:
        assert restored.search(query) == index.search(query)
    assert [p.name for p in path.parent.iterdir()] == ["bm25.json"]  # no temp files left


def test_snapshot_is_ignored_when_unusable(tmp_path):
    index = _index()
    path = tmp_path / "bm25.json"
    index.save(path, {"generation": "g"})
    assert BM25Index(tokenizer=Tokenizer("english")).load(path) is None  # other tokenizer
    assert BM25Index().load(tmp_path / "missing.json") is None
    path.write_bytes(path.read_bytes()[:-20])  # truncated
    fresh = BM25Index()
    fresh.upsert(["keep"], ["kept record"])
    assert fresh.load(path) is None
    assert fresh.ids == ["keep"]  # left as it was
    path.write_text(json.dumps({"format": "jinarag-bm25/1", "tokenizer": {"stopwords": None}}))
    assert fresh.load(path) is None


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write(path, b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_search_results_are_python_floats():
    (doc_id, score), *_ = _index().search("supersonic")
    assert isinstance(doc_id, str) and type(score) is float and np.isfinite(score)


@pytest.mark.slow
def test_backend_benchmark_runs(tmp_path):
    pytest.importorskip("bm25s")
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "bm25_backends.py"
    out = subprocess.run(
        [sys.executable, str(script), "--docs", "800", "--queries", "20", "--vocab", "3000"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| okapi")]
    assert [r[1].strip() for r in rows] == ["rank_bm25", "bm25s"]
    assert float(rows[1][-1]) == 1.0  # same Okapi top 10 from both backends
