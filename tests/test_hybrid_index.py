"""HybridIndex over real Chroma (embedded) and real rank-bm25, with the real MiniLM weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

import jinarag
from jinarag.errors import EmbedderMismatchError, InputError
from jinarag.retrieval.index import (
    DEFAULT_FUSION,
    DEFAULT_RRF_K,
    DEFAULT_WEIGHTS,
    Hit,
    HybridIndex,
    SourceScore,
)
from jinarag.retrieval.keyword.bm25 import BM25Index, Tokenizer
from jinarag.retrieval.search import fusion

TEXTS = [
    "The wing stalls at a high angle of attack when the flow separates.",
    "Supersonic flow over a swept wing produces an oblique shock.",
    "Boundary layer transition on a flat plate at Mach 3.",
    "Heat transfer to a blunt body in hypersonic flow.",
    "Propeller slipstream increases the lift of the wing behind it.",
    "Panel flutter of a cantilever plate in supersonic flow.",
    "Buckling of thin cylindrical shells under axial compression.",
    "Skin friction measured on a smooth flat plate in a wind tunnel.",
    "Sonic boom pressure signatures from supersonic aircraft.",
    "Drag of slender cones at hypersonic speeds.",
    "Creep buckling of columns at elevated temperature.",
    "Laminar separation bubbles on airfoils at low Reynolds numbers.",
]
METAS = [{"topic": "aero" if i % 3 else "structures", "n": i} for i in range(len(TEXTS))]
IDS = [f"doc-{i}" for i in range(len(TEXTS))]


def _chroma(path):
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


@pytest.fixture(scope="module")
def store(minilm_embedder, tmp_path_factory):
    """One stored index, read by the tests that do not write."""
    path = tmp_path_factory.mktemp("hybrid-store")
    index = HybridIndex(path, embedder=minilm_embedder)
    index.add(TEXTS, ids=IDS, metadatas=METAS)
    return index


@pytest.mark.slow
def test_import_jinarag_stays_light():
    code = (
        "import sys, jinarag; "
        "heavy = [m for m in ('chromadb', 'rank_bm25', 'bm25s') if m in sys.modules]; "
        "print(heavy); jinarag.HybridIndex; print('chromadb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
    assert jinarag.Hit is Hit


def test_records_vectors_and_collection_settings(store, minilm_embedder):
    assert store.count() == len(TEXTS)
    got = _chroma(store.path).get_collection("jinarag")
    assert got.metadata["jinarag:embedder"] == minilm_embedder.name
    assert got.metadata["jinarag:dim"] == minilm_embedder.dim
    assert got.configuration["hnsw"]["space"] == "cosine"
    assert got.configuration.get("embedding_function") is None  # Chroma never embeds
    stored = got.get(ids=IDS[:3], include=["embeddings", "documents", "metadatas"])
    order = [stored["ids"].index(i) for i in IDS[:3]]
    vectors = np.asarray(stored["embeddings"])[order]
    np.testing.assert_allclose(vectors, minilm_embedder.embed_documents(TEXTS[:3]), atol=1e-5)
    assert [stored["documents"][j] for j in order] == TEXTS[:3]


def test_get_keeps_the_requested_order(store):
    hits = store.get(["doc-5", "missing", "doc-1", "doc-5"])
    assert [h.id for h in hits] == ["doc-5", "doc-1"]
    assert hits[0].text == TEXTS[5] and hits[0].metadata == METAS[5]
    assert (hits[0].score, hits[0].score_space) == (0.0, "none")
    assert sorted(h.id for h in store.get(where={"topic": "structures"})) == [
        f"doc-{i}" for i in range(0, len(TEXTS), 3)
    ]


def test_dense_scores_are_cosine_similarities(store, minilm_embedder):
    query = "shock waves in supersonic flow"
    hits = store.search(query, k=5, mode="dense")
    assert [h.score_space for h in hits] == ["cosine"] * 5
    q = minilm_embedder.embed_query(query)
    docs = minilm_embedder.embed_documents(TEXTS)
    cosine = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q))
    expected = [IDS[i] for i in np.argsort(-cosine)[:5]]
    assert [h.id for h in hits] == expected
    for h in hits:
        assert h.score == pytest.approx(float(cosine[IDS.index(h.id)]), abs=1e-4)
        assert h.dense == SourceScore(hits.index(h) + 1, h.score) and h.bm25 is None


def test_bm25_scores_match_a_standalone_bm25(store):
    reference = BM25Index(tokenizer=Tokenizer("english", "english"))
    reference.upsert(IDS, TEXTS)
    hits = store.search("flat plate boundary layer", k=5, mode="bm25")
    expected = reference.search("flat plate boundary layer", k=5)
    assert [(h.id, h.score) for h in hits] == [(d, pytest.approx(s)) for d, s in expected]
    assert {h.score_space for h in hits} == {"bm25"} and all(h.dense is None for h in hits)


def test_hybrid_is_the_fusion_of_both_sources(store):
    query = "buckling of shells"
    dense, bm25 = store.sources(query, candidates=100)
    assert dense and bm25
    for method in fusion.FUSION_METHODS:
        hits = store.search(query, k=6, fusion=method)
        expected = fusion.fuse(method, [dense, bm25], DEFAULT_WEIGHTS[method], DEFAULT_RRF_K)[:6]
        assert [h.id for h in hits] == [d for d, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected])
        assert {h.score_space for h in hits} == {method}
    top = store.search(query, k=1)[0]
    assert top.dense == SourceScore(
        *next((r, s) for r, (d, s) in enumerate(dense, 1) if d == top.id)
    )
    assert top.bm25 is not None and top.bm25.rank >= 1


def test_weights_pick_a_side(store):
    query = "drag of cones at hypersonic speed"
    dense_only = store.search(query, k=5, weights=[1.0, 0.0])
    assert [h.id for h in dense_only] == [h.id for h in store.search(query, k=5, mode="dense")]
    bm25_only = store.search(query, k=3, weights=[0.0, 1.0])
    bm25_ids = [h.id for h in store.search(query, k=3, mode="bm25")]
    assert [h.id for h in bm25_only][: len(bm25_ids)] == bm25_ids


def test_where_filters_both_sources(store):
    where = {"topic": "structures"}
    allowed = {f"doc-{i}" for i in range(0, len(TEXTS), 3)}
    for mode in ("hybrid", "dense", "bm25"):
        hits = store.search("flow over a wing plate", k=10, mode=mode, where=where)
        assert hits and {h.id for h in hits} <= allowed
    # BM25 filters before ranking: the best "plate" documents are not allowed, yet k come back.
    unfiltered = [h.id for h in store.search("plate flow", k=10, mode="bm25")]
    filtered = store.search("plate flow", k=2, mode="bm25", where={"n": {"$in": [0, 3, 11]}})
    assert unfiltered[0] not in {"doc-0", "doc-3", "doc-11"}
    assert [h.id for h in filtered] == [i for i in unfiltered if i in {"doc-0", "doc-3", "doc-11"}][
        :2
    ]
    assert len(filtered) == 2


def test_k_larger_than_the_corpus_returns_everything(store):
    assert len(store.search("wing", k=1000, mode="dense")) == len(TEXTS)
    assert len(store.search("wing", k=1000)) == len(TEXTS)


def test_scored_metadata_is_a_new_dict(store):
    hit = store.search("flutter of a plate", k=1)[0]
    meta = hit.scored_metadata()
    assert meta["topic"] == hit.metadata["topic"] and meta["n"] == hit.metadata["n"]
    assert meta["score"] == hit.score and meta["score_space"] == DEFAULT_FUSION
    assert (meta["dense_rank"], meta["dense_score"]) == tuple(hit.dense)
    assert (meta["bm25_rank"], meta["bm25_score"]) == tuple(hit.bm25)
    assert "rerank_score" not in meta
    meta["topic"] = "changed"
    hit.metadata["n"] = -1
    assert store.get([hit.id])[0].metadata == METAS[IDS.index(hit.id)]
    dense_meta = store.search("flutter", k=1, mode="dense")[0].scored_metadata()
    assert "bm25_rank" not in dense_meta and dense_meta["score_space"] == "cosine"


def test_rerank(store, minilm_reranker):
    query = "what makes a wing stall?"
    hits = store.search(query, k=4, rerank=minilm_reranker, rerank_top=8)
    assert [h.score_space for h in hits] == ["sigmoid"] * 4
    pool = store.search(query, k=8)
    scores = minilm_reranker.score(query, [h.text for h in pool])
    expected = [pool[i].id for i in np.argsort(-scores, kind="stable")[:4]]
    assert [h.id for h in hits] == expected
    for h in hits:
        assert 0.0 < h.score < 1.0 and h.rerank_score == h.score
        assert h.scored_metadata()["rerank_score"] == h.score
    with pytest.raises(InputError, match="no reranker"):
        store.search(query, rerank=True)
    assert store.search(query, k=3, rerank=False)[0].score_space == DEFAULT_FUSION


def test_index_level_reranker_is_used_by_default(minilm_embedder, minilm_reranker):
    with HybridIndex(embedder=minilm_embedder, reranker=minilm_reranker) as index:
        index.add(TEXTS[:5])
        assert index.search("stall", k=2)[0].score_space == "sigmoid"
        assert index.search("stall", k=2, rerank=False)[0].score_space == DEFAULT_FUSION


def test_add_is_an_upsert_with_content_hash_ids(minilm_embedder):
    with HybridIndex(embedder=minilm_embedder) as index:
        ids = index.add(
            ["alpha wing", "beta plate", "alpha wing"], metadatas=[None, {"a": 1}, None]
        )
        assert ids[0] == ids[2] != ids[1] and index.count() == 2
        again = index.add(["beta plate", "beta plate"], metadatas=[{"a": 1}, {"a": 2}])
        assert again[0] == ids[1] and again[1] != ids[1]  # metadata is part of the hash
        assert index.count() == 3
        index.add(["gamma shell replaces it"], ids=[ids[0]])
        assert index.get([ids[0]])[0].text == "gamma shell replaces it"
        assert index.count() == 3
        assert [h.id for h in index.search("gamma", k=3, mode="bm25")] == [ids[0]]
        assert index.search("wing", mode="bm25") == []
    with HybridIndex(embedder=minilm_embedder) as other:
        assert other.add(["alpha wing"]) == [ids[0]]  # stable across indexes


def test_delete_by_id_and_filter(minilm_embedder):
    with HybridIndex(embedder=minilm_embedder) as index:
        index.add(TEXTS, ids=IDS, metadatas=METAS)
        index.delete(["doc-1", "unknown"])
        index.delete(where={"topic": "structures"})
        left = {f"doc-{i}" for i in range(len(TEXTS)) if i % 3 and i != 1}
        assert index.count() == len(left)
        assert set(index.bm25_index.ids) == left
        assert {h.id for h in index.search("buckling plate wing", k=100)} <= left
        with pytest.raises(InputError, match="needs ids, a where filter, or both"):
            index.delete()


def test_in_memory_indexes_are_private(minilm_embedder):
    with HybridIndex(embedder=minilm_embedder) as a, HybridIndex(embedder=minilm_embedder) as b:
        a.add(["only in a"])
        assert (a.count(), b.count()) == (1, 0)


def test_reopen_uses_the_snapshot(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    index.add(TEXTS[:6], ids=IDS[:6])
    snapshot = tmp_path / "jinarag-bm25" / "jinarag.json"
    saved = snapshot.read_bytes()
    state = json.loads(saved)["state"]
    assert state["count"] == 6 and sorted(json.loads(saved)["ids"]) == sorted(IDS[:6])
    os.utime(snapshot, (1, 1))
    reopened = HybridIndex(tmp_path, embedder=minilm_embedder)
    assert snapshot.stat().st_mtime == 1  # current: loaded, not rebuilt
    assert reopened.bm25_index.ids == index.bm25_index.ids
    assert [h.id for h in reopened.search("flat plate", k=3, mode="bm25")] == [
        h.id for h in index.search("flat plate", k=3, mode="bm25")
    ]


def test_outside_writes_make_the_snapshot_stale(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    index.add(TEXTS[:4], ids=IDS[:4])
    # Another program writes straight into the collection.
    raw = _chroma(tmp_path).get_collection("jinarag")
    raw.add(
        ids=["outside"],
        embeddings=minilm_embedder.embed_documents(["zeppelin mooring masts"]),
        documents=["zeppelin mooring masts"],
    )
    # This index notices at its next search, a new one at open.
    assert [h.id for h in index.search("zeppelin", mode="bm25")] == ["outside"]
    reopened = HybridIndex(tmp_path, embedder=minilm_embedder)
    assert sorted(reopened.bm25_index.ids) == sorted([*IDS[:4], "outside"])
    # A second index on the same store sees the first one's writes.
    index.add(["airship hangar doors"], ids=["hangar"])
    assert [h.id for h in reopened.search("hangar", mode="bm25")] == ["hangar"]


def test_corrupt_snapshot_is_rebuilt(minilm_embedder, tmp_path):
    HybridIndex(tmp_path, embedder=minilm_embedder).add(TEXTS[:3], ids=IDS[:3])
    snapshot = tmp_path / "jinarag-bm25" / "jinarag.json"
    snapshot.write_bytes(snapshot.read_bytes()[:30])
    reopened = HybridIndex(tmp_path, embedder=minilm_embedder)
    assert sorted(reopened.bm25_index.ids) == IDS[:3]
    assert json.loads(snapshot.read_bytes())["state"]["count"] == 3


def test_another_embedder_is_refused(minilm_embedder, minilm_dir, tmp_path, store):
    # Same dimension, other model (a copy of the weights at another path counts as another model).
    other_dir = tmp_path / "other-model"
    other_dir.mkdir()
    for f in minilm_dir.iterdir():
        if f.is_file():
            os.link(f, other_dir / f.name)
    other = jinarag.Embedder.from_pretrained(other_dir, max_length=64)
    with pytest.raises(EmbedderMismatchError) as info:
        HybridIndex(store.path, embedder=other)
    message = str(info.value)
    assert minilm_embedder.name in message and str(other_dir) in message
    assert "another collection name" in message
    HybridIndex(store.path, collection="other-space", embedder=other)  # a new collection is fine


def test_bm25_options_reach_the_keyword_side(minilm_embedder):
    with HybridIndex(
        embedder=minilm_embedder, bm25="bm25plus", k1=1.2, delta=0.8, stopwords=None, stemmer=None
    ) as index:
        index.add(TEXTS, ids=IDS)
        reference = BM25Index("bm25plus", k1=1.2, delta=0.8, tokenizer=Tokenizer(None))
        reference.upsert(IDS, TEXTS)
        got = [(h.id, h.score) for h in index.search("the flat plate", k=4, mode="bm25")]
        assert got == [(d, pytest.approx(s)) for d, s in reference.search("the flat plate", k=4)]


def test_the_analyser_is_stored_with_the_snapshot(minilm_embedder, tmp_path):
    with HybridIndex(tmp_path, embedder=minilm_embedder) as index:  # stems by default
        index.add(TEXTS, ids=IDS)
        assert index.bm25_index.tokens("doc-0")[:3] == ["wing", "stall", "high"]
        assert [h.id for h in index.search("stalling wings", k=1, mode="bm25")] == ["doc-0"]
    snapshot = json.loads((tmp_path / "jinarag-bm25" / "jinarag.json").read_text())
    assert snapshot["tokenizer"] == {"stopwords": "english", "stemmer": "english"}
    # Opened with another analyser, BM25 is rebuilt from Chroma with it, queries included.
    with HybridIndex(tmp_path, embedder=minilm_embedder, stemmer=None) as plain:
        assert plain.bm25_index.tokens("doc-0")[:3] == ["wing", "stalls", "high"]
        assert plain.search("stalling wings", k=1, mode="bm25") == []
    with pytest.raises(InputError, match="stemmer must be None or a Snowball stemmer name"):
        HybridIndex(embedder=minilm_embedder, stemmer="klingon")


def test_bm25s_backend_in_the_index(minilm_embedder):
    pytest.importorskip("bm25s")
    with HybridIndex(embedder=minilm_embedder, bm25_backend="bm25s") as index:
        index.add(TEXTS, ids=IDS)
        hits = index.search("buckling of columns", k=3, mode="bm25")
        assert hits[0].id == "doc-10" and hits[0].score_space == "bm25"


@pytest.mark.slow
def test_chroma_clients_opened_first_with_default_settings(minilm_dir, tmp_path):
    # Chroma allows one set of settings per store and process; the index must cope with an
    # application that opened Chroma its own way before (a fresh process, to start clean).
    code = f"""
import chromadb, jinarag
emb = jinarag.Embedder.from_pretrained({str(minilm_dir)!r})
mine = chromadb.EphemeralClient()
persistent = chromadb.PersistentClient(path={str(tmp_path)!r})
memory = jinarag.HybridIndex(embedder=emb)
memory.add(["in memory"])
stored = jinarag.HybridIndex({str(tmp_path)!r}, embedder=emb)
stored.add(["on disk"], ids=["d"])
print(memory.count(), persistent.get_collection("jinarag").get(ids=["d"])["documents"])
"""
    env = {k: v for k, v in os.environ.items() if k != "ANONYMIZED_TELEMETRY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "1 ['on disk']"
