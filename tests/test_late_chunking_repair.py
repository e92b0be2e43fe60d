"""Repairing a store that holds late-chunked documents, on real Chroma stores: when the vector
index is rebuilt from the stored texts, or the coverage check has to embed texts again, each
chunk gets its late-chunked vector back (all of its document read at once), never a vector of
the chunk read alone; plain records keep their own. A document that lost a chunk is refused by
name instead of being given vectors without its context.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from jinarag.errors import StoreCorruptError, StoreError
from jinarag.retrieval.index import HybridIndex
from jinarag.retrieval.ingest.late import late_chunk
from jinarag.retrieval.store.client import drop_system
from jinarag.retrieval.store.files import vector_folder
from jinarag.retrieval.write.rebuild import rebuild_vector_index
from jinarag.retrieval.write.verify import _vectors

# Short documents whose later sentences lean on earlier ones ("it", "they", "this"), so a
# chunk read with its document differs from the same chunk read alone.
DOCS = {
    "wing": "The swept wing was tested at Mach 0.8. It stalled early at the tip. "
    "This was traced to spanwise flow. Fences on it cured the problem.",
    "shell": "A thin cylindrical shell buckles under axial load. Its critical load falls "
    "with imperfections. They grow with the radius to thickness ratio.",
    "plate": "Heat flux on a flat plate was measured in a shock tunnel. It rose near the "
    "leading edge. The theory underpredicts it there.",
    "jet": "A jet exhausts into a crossflow. It bends downstream. Its wake holds two "
    "counter-rotating vortices. They entrain the crossflow fluid.",
    "nozzle": "The nozzle was run overexpanded. Its exit shock moved inside. This caused "
    "side loads on it.",
}
PLAIN = {
    f"p{i}": f"note {i} on the boundary layer over body {i % 4} at angle {i * 7 % 23}"
    for i in range(20)
}
RTOL = ATOL = 1e-5


def _flushing_collection(path: Path) -> None:
    """Make the collection so that Chroma writes its HNSW files every 10 records."""
    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    client.get_or_create_collection(
        "jinarag",
        embedding_function=None,
        configuration={
            "hnsw": {"space": "cosine", "ef_search": 200, "sync_threshold": 10, "batch_size": 10}
        },
    )


@pytest.fixture(scope="module")
def expected(minilm_embedder) -> dict[str, np.ndarray]:
    """``{id: vector}`` the records must hold: late chunks embedded with their whole document,
    plain records alone."""
    out: dict[str, np.ndarray] = {}
    for doc_id, text in DOCS.items():
        chunks = [c.text for c in late_chunk(minilm_embedder, text, by="sentences")]
        assert len(chunks) >= 3
        vectors = minilm_embedder.embed_late_chunks(chunks)
        # Read alone, the chunks get other vectors: the loss this file guards against.
        alone = minilm_embedder.embed_documents(chunks)
        assert not np.allclose(vectors, alone, rtol=RTOL, atol=ATOL)
        out.update({f"{doc_id}#{n}": vector for n, vector in enumerate(vectors)})
    plain = minilm_embedder.embed_documents(list(PLAIN.values()))
    out.update(zip(PLAIN, plain, strict=True))
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory, minilm_embedder) -> Path:
    path = tmp_path_factory.mktemp("late-template") / "store"
    _flushing_collection(path)
    index = HybridIndex(path, embedder=minilm_embedder)
    index.add(list(PLAIN.values()), ids=list(PLAIN), metadatas=[{"kind": "plain"}] * len(PLAIN))
    index.add(
        list(DOCS.values()),
        ids=list(DOCS),
        metadatas=[{"kind": "doc"}] * len(DOCS),
        chunking="late",
        chunk_by="sentences",
    )
    drop_system(index.store.client)
    return path


@pytest.fixture
def store(template, tmp_path) -> Path:
    """A fresh copy of the template store, at a path this process has not opened."""
    copy = tmp_path / "store"
    shutil.copytree(template, copy)
    return copy


def _segment(path: Path) -> Path:
    folder = vector_folder(path, "jinarag")
    assert folder is not None and (folder / "header.bin").is_file(), "the store has no HNSW files"
    return folder


def _lose_label(store: Path, record_id: str) -> None:
    """Make Chroma's id -> label map forget one record: its vector can no longer be read."""
    path = _segment(store) / "index_metadata.pickle"
    meta = pickle.loads(path.read_bytes())  # Chroma's own file, in a test
    meta["label_to_id"].pop(meta["id_to_label"].pop(record_id))
    path.write_bytes(pickle.dumps(meta, protocol=2))


def _stored(index: HybridIndex) -> dict[str, np.ndarray]:
    ids = index.store.ids()
    got, vectors = index.store.embeddings(ids)
    return dict(zip(got, np.asarray(vectors, dtype=np.float32), strict=True))


def _assert_vectors(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    wrong = [i for i in expected if not np.allclose(got[i], expected[i], rtol=RTOL, atol=ATOL)]
    assert wrong == []


def _open(store: Path, embedder) -> HybridIndex:
    return HybridIndex(store, embedder=embedder)


def test_the_store_holds_late_chunked_vectors(store, minilm_embedder, expected):
    # What every repair below must give back.
    _assert_vectors(_stored(_open(store, minilm_embedder)), expected)


def test_rebuilding_missing_vector_files_reads_each_chunk_with_its_document(
    store, minilm_embedder, expected, monkeypatch
):
    import jinarag.retrieval.write.rebuild as rebuild

    monkeypatch.setattr(rebuild, "_BATCH", 4)  # documents meet batch edges
    shutil.rmtree(_segment(store))
    assert rebuild_vector_index(store, "jinarag", minilm_embedder) == len(expected)
    index = _open(store, minilm_embedder)
    _assert_vectors(_stored(index), expected)
    meta = index.get(["jet#2"])[0].metadata
    assert (meta["doc_id"], meta["chunk"], meta["kind"]) == ("jet", 2, "doc")
    assert index.verify().healthy


def test_verify_repair_reads_each_chunk_with_its_document(store, minilm_embedder, expected):
    _lose_label(store, "wing#2")
    index = _open(store, minilm_embedder)
    with pytest.raises(StoreCorruptError):
        index.verify()
    report = index.verify(repair=True)
    assert report.rebuilt_vectors == len(expected) and report.healthy
    _assert_vectors(_stored(index), expected)


def test_the_coverage_check_reads_each_chunk_with_its_document(store, minilm_embedder, expected):
    # The vector index cannot return wing#2, so the check embeds the batch's texts again;
    # the other chunks of "wing" and "shell" are outside the batch and read from the store.
    _lose_label(store, "wing#2")
    index = _open(store, minilm_embedder)
    batch = ["p3", "wing#2", "shell#1", "p4"]
    with pytest.raises(StoreCorruptError):
        index.store.embeddings(batch)
    got, vectors = _vectors(index.store, minilm_embedder, batch)
    assert sorted(got) == sorted(batch)
    _assert_vectors(dict(zip(got, vectors, strict=True)), {i: expected[i] for i in batch})


def test_a_rebuild_refuses_a_document_that_lost_a_chunk(store, minilm_embedder):
    index = _open(store, minilm_embedder)
    index.delete(["shell#1"])
    drop_system(index.store.client)
    data = _segment(store) / "data_level0.bin"
    os.truncate(data, data.stat().st_size // 2)
    size = data.stat().st_size
    with pytest.raises(StoreError) as info:
        rebuild_vector_index(store, "jinarag", minilm_embedder)
    message = str(info.value)
    assert not isinstance(info.value, StoreCorruptError)  # not a damage a rebuild mends
    assert "'shell' lacks chunk 1" in message and "chunking='late'" in message
    assert "wing" not in message
    # Nothing was written: the damaged file is back where it was, no half-built collection.
    assert data.stat().st_size == size
    assert not list(store.glob("jinarag-damaged-*"))
    client = chromadb.PersistentClient(
        path=str(store), settings=Settings(anonymized_telemetry=False)
    )
    assert [c.name for c in client.list_collections()] == ["jinarag"]


def test_the_coverage_check_refuses_a_document_that_lost_a_chunk(store, minilm_embedder):
    index = _open(store, minilm_embedder)
    index.delete(["jet#0"])
    drop_system(index.store.client)
    _lose_label(store, "wing#2")
    index = _open(store, minilm_embedder)
    with pytest.raises(StoreError, match="'jet' lacks chunk 0") as info:
        _vectors(index.store, minilm_embedder, ["wing#2", "jet#1"])
    assert "delete(where={'doc_id': doc_id})" in str(info.value)
