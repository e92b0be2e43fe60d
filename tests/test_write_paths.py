"""Every write path makes the same records for the same input, in the one layout
(jinarag.retrieval.layout), and a store written in the layout before it keeps reading and takes
the new layout when written again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jinarag.retrieval.index import HybridIndex
from jinarag.retrieval.layout import (
    CHUNK_KEYS,
    CHUNKING_KEY,
    DOC_CHUNKS_KEY,
    DOC_HASH_KEY,
    HASH_KEY,
    RESERVED_PREFIX,
    ROOT_KEY,
    SOURCE_DOCS_KEY,
    SOURCE_HASH_KEY,
    Record,
    visible,
)
from jinarag.retrieval.write.records import record_hash

SOURCE_KEYS = {ROOT_KEY, SOURCE_HASH_KEY, SOURCE_DOCS_KEY}
DOCS = {
    "wing": (
        "A wing in a slipstream gains lift as the angle of attack grows. "
        "Past the critical angle the flow separates and the wing stalls. "
        "Slats and flaps delay the separation on the upper surface. " * 2
    ),
    "shell": "Thin cylindrical shells buckle under axial load. Their imperfections matter.",
}


def _raw(index: HybridIndex) -> dict[str, tuple[str, dict, np.ndarray]]:
    """Every stored record as Chroma holds it: text, full metadata (our keys too), vector."""
    ids = sorted(index.store.ids())
    texts = dict(zip(*index.store.documents(ids), strict=True))
    got, vectors = index.store.embeddings(ids)
    metas = dict(index.store.metadatas())
    return {i: (texts[i], metas[i], np.asarray(v)) for i, v in zip(got, vectors, strict=True)}


def _jsonl(folder: Path) -> Path:
    folder.mkdir()
    with (folder / "docs.jsonl").open("w") as f:
        for doc_id, text in DOCS.items():
            f.write(json.dumps({"_id": doc_id, "text": text, "topic": "aero"}) + "\n")
    return folder


def _assert_same_records(a: dict, b: dict, *, only_b: set[str] = frozenset()) -> None:
    """Same ids, texts, metadata and vectors (within float tolerance: the batches differ);
    keys in ``only_b`` are the ones path b adds (a file's source bookkeeping)."""
    assert sorted(a) == sorted(b)
    for record_id in a:
        text_a, meta_a, vector_a = a[record_id]
        text_b, meta_b, vector_b = b[record_id]
        assert text_a == text_b, record_id
        trimmed = {k: v for k, v in meta_b.items() if k not in only_b | {HASH_KEY}}
        assert {k: v for k, v in meta_a.items() if k != HASH_KEY} == trimmed, record_id
        assert only_b <= set(meta_b), record_id
        np.testing.assert_allclose(vector_a, vector_b, atol=1e-5)
        # The stored content hash is the hash of what is stored (so nothing is rewritten).
        without = {k: v for k, v in meta_b.items() if k != HASH_KEY}
        assert meta_b[HASH_KEY] == record_hash(text_b, without)


def test_late_add_and_late_files_write_the_same_records(minilm_embedder, tmp_path):
    folder = _jsonl(tmp_path / "docs")
    by_add = HybridIndex(tmp_path / "a", embedder=minilm_embedder)
    by_add.add(
        list(DOCS.values()),
        ids=list(DOCS),
        metadatas=[{"source": "docs.jsonl", "topic": "aero"}] * len(DOCS),
        chunking="late",
        chunk_tokens=16,
    )
    by_files = HybridIndex(tmp_path / "b", embedder=minilm_embedder)
    report = by_files.add_files([folder], chunking="late", chunk_tokens=16)
    assert report.added == ["docs.jsonl"]
    a, b = _raw(by_add), _raw(by_files)
    assert len(a) > len(DOCS)  # the long document made several chunks
    _assert_same_records(a, b, only_b=SOURCE_KEYS)
    for record_id, (text, meta, _) in a.items():
        doc_id = meta["doc_id"]
        assert record_id == f"{doc_id}#{meta['chunk']}"
        assert DOCS[doc_id][meta["span_start"] : meta["span_end"]] == text
        assert meta[CHUNKING_KEY] == "late,tokens=16"
        assert meta[DOC_CHUNKS_KEY] == sum(m["doc_id"] == doc_id for _, m, _ in a.values())
        assert set(visible(meta)) == {"source", "topic", *CHUNK_KEYS}  # no visible bookkeeping
        assert all(k.startswith(RESERVED_PREFIX) for k in set(meta) - set(visible(meta)))


def test_plain_add_through_the_writer_equals_add(minilm_embedder, tmp_path):
    texts = list(DOCS.values())
    by_add = HybridIndex(tmp_path / "a", embedder=minilm_embedder)
    by_add.add(texts, ids=list(DOCS), metadatas=[{"topic": "aero"}, None])
    by_writer = HybridIndex(tmp_path / "b", embedder=minilm_embedder)
    by_writer.writer.write(
        [Record("wing", texts[0], {"topic": "aero"}), Record("shell", texts[1], {})]
    )
    _assert_same_records(_raw(by_add), _raw(by_writer))


@pytest.mark.slow
def test_ray_files_write_the_same_records_as_local_files(minilm_embedder, tmp_path):
    pytest.importorskip("ray.data")
    from jinarag.retrieval.ingest.ray_executor import RayExecutor

    folder = _jsonl(tmp_path / "docs")
    (folder / "notes.md").write_text("Heat flux at Mach 5 on a blunt body. " * 30)
    results = []
    for name, executor in (("local", None), ("ray", RayExecutor(actors=1, batch_chunks=8))):
        for chunking in (None, "late"):
            index = HybridIndex(tmp_path / f"{name}-{chunking}", embedder=minilm_embedder)
            index.add_files([folder], chunking=chunking, chunk_tokens=32, executor=executor)
            results.append(_raw(index))
    local_plain, local_late, ray_plain, ray_late = results
    _assert_same_records(local_plain, ray_plain)
    _assert_same_records(local_late, ray_late)
    # Chunks of files cut without late chunking carry the same visible keys.
    assert all(set(CHUNK_KEYS) <= set(m) and m[DOC_HASH_KEY] for _, m, _ in local_plain.values())


def test_a_store_of_the_layout_before_reads_and_migrates_on_write(minilm_embedder, tmp_path):
    """Late chunks as ``add(chunking="late")`` wrote them before: a visible ``doc_hash`` and no
    ``jinarag:`` document keys."""
    text = DOCS["wing"]
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    fresh = HybridIndex(embedder=minilm_embedder)
    ids = fresh.add([text], ids=["wing"], chunking="late", chunk_tokens=16)
    now = _raw(fresh)
    old = [
        Record(
            i,
            now[i][0],
            {**visible(now[i][1]), "doc_hash": "0" * 32},  # the old key, the old place
        )
        for i in ids
    ]
    index.writer.write(old, vectors=np.stack([now[i][2] for i in ids]))
    before = _raw(index)
    assert all("doc_hash" in meta and DOC_HASH_KEY not in meta for _, meta, _ in before.values())
    # It reads: search and get find the chunks, and verify groups them as late chunks.
    assert index.search("stall of a wing", k=1)[0].id in ids
    assert [h.id for h in index.get(ids)] == ids
    report = index.verify(repair=True)
    assert report.healthy
    # Written again, it takes the new layout, with the same texts and vectors.
    assert index.add([text], ids=["wing"], chunking="late", chunk_tokens=16) == ids
    after = _raw(index)
    _assert_same_records(now, after)
    assert all("doc_hash" not in meta for _, meta, _ in after.values())
