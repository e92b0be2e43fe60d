"""HybridIndex under bad input and failures: InputErrors with choices, a SIGKILL mid-add, a
batch Chroma refuses, and the BM25 snapshot never ahead of Chroma."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import chromadb
import pytest
from chromadb.config import Settings

from jinarag.errors import InputError
from jinarag.retrieval.index import HybridIndex

TEXTS = [f"record {i} about wing {i % 7} and plate {i % 5}" for i in range(20)]


def _chroma_ids(path, collection="jinarag"):
    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    return set(client.get_collection(collection).get(include=[])["ids"])


def _snapshot(path, collection="jinarag"):
    return json.loads((path / "jinarag-bm25" / f"{collection}.json").read_bytes())


@pytest.fixture(scope="module")
def small(minilm_embedder):
    index = HybridIndex(embedder=minilm_embedder)
    index.add(TEXTS)
    yield index
    index.close()


def test_empty_index_search_returns_nothing(minilm_embedder):
    with HybridIndex(embedder=minilm_embedder) as index:
        for mode in ("hybrid", "dense", "bm25"):
            assert index.search("anything", mode=mode) == []
        assert index.search("anything", where={"a": 1}) == []
        assert index.count() == 0 and index.get(["x"]) == []
        assert index.add([]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a positive integer, got 0"),
        ({"k": -3}, "k must be a positive integer, got -3"),
        ({"k": 2.5}, "k must be a positive integer, got 2.5"),
        ({"k": True}, "k must be a positive integer, got True"),
        ({"mode": "sparse"}, "unknown mode 'sparse'; choose one of hybrid, dense, bm25"),
        ({"fusion": "borda"}, "unknown fusion 'borda'; choose one of rrf, relative, dbsf"),
        ({"weights": [1.0]}, "weights has 1 values but there are 2 sources"),
        ({"weights": [1.0, 1.0, 1.0]}, "weights has 3 values but there are 2 sources"),
        ({"weights": [0, 0]}, "weights are all zero"),
        ({"weights": [1, 1], "mode": "dense"}, "weights apply to mode='hybrid' only"),
        ({"candidates": 0}, "candidates must be a positive integer"),
        ({"candidates": 3, "k": 5}, "candidates (3) must be at least k (5)"),
        ({"rrf_k": -1}, "rrf k must be a finite number >= 0"),
        ({"where": "topic=aero"}, "where must be a dict"),
        ({"where": {"$nonsense": 1}}, "Chroma rejected the request"),
        ({"rerank": "yes"}, "rerank must be a Reranker, True, False or None"),
    ],
)
def test_bad_search_arguments(small, kwargs, message):
    with pytest.raises(InputError) as info:
        small.search("wing", **kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_queries_and_records(small):
    with pytest.raises(InputError, match="query must be a string, got int"):
        small.search(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"texts\[1\] is int 7; pass strings only"):
        small.add(["fine", 7])  # type: ignore[list-item]
    with pytest.raises(InputError, match="wrap a single text in a list"):
        small.add("a bare string")
    with pytest.raises(InputError, match=r"duplicate ids in one call: \['a'\]"):
        small.add(["x", "y", "z"], ids=["a", "b", "a"])
    with pytest.raises(InputError, match="got 1 ids for 2 texts"):
        small.add(["x", "y"], ids=["a"])
    with pytest.raises(InputError, match=r"ids\[0\] is empty"):
        small.add(["x"], ids=[""])
    with pytest.raises(InputError, match="got 1 metadatas for 2 texts"):
        small.add(["x", "y"], metadatas=[{"a": 1}])
    with pytest.raises(InputError, match=r"metadatas\[0\] is str"):
        small.add(["x"], metadatas=["a=1"])
    assert small.count() == len(TEXTS)  # nothing was written by the refused calls


def test_bad_constructor_arguments(minilm_embedder, tmp_path):
    with pytest.raises(InputError, match="needs an embedder"):
        HybridIndex(tmp_path)
    with pytest.raises(InputError, match="choose one of okapi, bm25l, bm25plus"):
        HybridIndex(embedder=minilm_embedder, bm25="bm99")
    with pytest.raises(InputError, match="url must look like http://HOST:PORT"):
        HybridIndex(url="localhost:8000", embedder=minilm_embedder)
    with pytest.raises(InputError, match="Chroma rejected"):
        HybridIndex(tmp_path, collection="x", embedder=minilm_embedder)  # too short for Chroma


def test_k_beyond_the_corpus_returns_all(small):
    assert len(small.search("record", k=500, mode="bm25")) == len(TEXTS)
    assert len(small.search("record", k=500, mode="dense")) == len(TEXTS)
    assert len(small.search("record", k=500)) == len(TEXTS)


class _RefusingEmbedder:
    """MiniLM, except that a batch holding a text with "REFUSE" in it gets 3-d vectors, which
    Chroma refuses (the collection holds 384-d ones). Metadata is checked before anything is
    written, so a refused batch in the middle of an add comes from Chroma this way."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.refuse = inner, inner.name, inner.dim, True

    def embed_documents(self, texts):
        vectors = self.inner.embed_documents(texts)
        return vectors[:, :3] if self.refuse and any("REFUSE" in t for t in texts) else vectors

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_a_refused_batch_leaves_both_sides_equal(minilm_embedder, tmp_path):
    refusing = _RefusingEmbedder(minilm_embedder)
    index = HybridIndex(tmp_path, embedder=refusing, batch_size=4)
    index.add(["already there"], ids=["first"])
    texts = [f"text number {i}" for i in range(12)]
    ids = [f"t{i}" for i in range(12)]
    metas = [{"i": i} for i in range(12)]
    texts[9] = "text number 9 (REFUSE this batch)"
    with pytest.raises(InputError) as info:
        index.add(texts, ids=ids, metadatas=metas)
    assert "8 of 12 records were stored before this error" in str(info.value)
    stored = _chroma_ids(tmp_path)
    assert stored == {"first", *ids[:8]}
    assert set(index.bm25_index.ids) == stored
    # The snapshot on disk is the one from before the failed add: behind, never ahead.
    assert set(_snapshot(tmp_path)["ids"]) <= stored
    assert set(HybridIndex(tmp_path, embedder=minilm_embedder).bm25_index.ids) == stored
    refusing.refuse = False
    index.add(texts, ids=ids, metadatas=metas)
    assert _chroma_ids(tmp_path) == set(index.bm25_index.ids) == {"first", *ids}
    assert set(_snapshot(tmp_path)["ids"]) == {"first", *ids}


_ADD_SCRIPT = textwrap.dedent(
    """
    import sys
    import jinarag

    path, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    embedder = jinarag.Embedder.from_pretrained(model, max_length=32)
    index = jinarag.HybridIndex(path, embedder=embedder, batch_size=8)
    texts = [f"crash test record {i} on wing flutter {i % 13}" for i in range(n)]
    print("adding", flush=True)
    index.add(texts, show_progress=True)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_add(minilm_embedder, minilm_dir, tmp_path):
    n = 400
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _ADD_SCRIPT, str(tmp_path), str(minilm_dir), str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        # The progress bar (stderr) counts records stored in Chroma and BM25; kill after 24.
        seen, buffer = 0, b""
        deadline = time.monotonic() + 300
        while seen < 24:
            chunk = proc.stderr.read1(4096)
            if not chunk:
                pytest.fail(
                    f"the add process ended early: {buffer[-2000:].decode(errors='replace')}"
                )
            buffer += chunk
            counts = re.findall(rb"(\d+)/" + str(n).encode(), buffer)
            seen = int(counts[-1]) if counts else 0
            assert time.monotonic() < deadline, "no progress from the add process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert b"finished" not in proc.stdout.read()

    stored = _chroma_ids(tmp_path)
    assert 24 <= len(stored) < n  # really killed in the middle
    reopened = HybridIndex(tmp_path, embedder=minilm_embedder, batch_size=64)
    assert set(reopened.bm25_index.ids) == stored == _chroma_ids(tmp_path)
    assert set(_snapshot(tmp_path)["ids"]) == stored
    # Repeating the same add completes it: the same content-hash ids, nothing twice.
    texts = [f"crash test record {i} on wing flutter {i % 13}" for i in range(n)]
    ids = reopened.add(texts)
    assert set(ids) >= stored and len(set(ids)) == n
    assert _chroma_ids(tmp_path) == set(reopened.bm25_index.ids) == set(ids)
    assert reopened.count() == n
    hits = reopened.search("crash test record 399", k=1, mode="bm25")
    assert hits[0].text == texts[399]


@pytest.mark.slow
@pytest.mark.parametrize("first", ["index", "user"])
def test_an_in_memory_index_and_the_users_own_chroma_clients_share_a_process(
    first, minilm_dir, tmp_path
):
    """A user's `chromadb.EphemeralClient()` / `PersistentClient(path)` on Chroma's defaults,
    made before or after an in-memory or stored HybridIndex, works (Chroma refuses a second
    instance with other settings); run in a fresh process, as a user's script would."""
    script = textwrap.dedent(
        f"""
        import os
        os.environ.pop("ANONYMIZED_TELEMETRY", None)
        import chromadb
        from jinarag import Embedder, HybridIndex

        def users():
            mine = chromadb.EphemeralClient().get_or_create_collection("mine")
            mine.add(ids=["u"], embeddings=[[0.1, 0.2]], documents=["user"])
            stored = chromadb.PersistentClient({str(tmp_path / "store")!r})
            return mine.count() + len(stored.list_collections())

        embedder = Embedder.from_pretrained({str(minilm_dir)!r}, device="cpu", backend="torch")
        seen = users() if {first!r} == "user" else None
        memory = HybridIndex(embedder=embedder)
        memory.add(["lift of a wing"], ids=["a"])
        stored = HybridIndex({str(tmp_path / "store")!r}, embedder=embedder)
        stored.add(["drag of a body"], ids=["b"])
        seen = users() if seen is None else seen
        print(seen, memory.count(), stored.count(), os.environ["ANONYMIZED_TELEMETRY"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = done.stdout.split()
    assert counts[1:] == ["1", "1", "False"], done.stdout
    assert int(counts[0]) >= 1
