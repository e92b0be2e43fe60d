"""HybridIndex against a real `chroma run` server on 127.0.0.1, started and stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from chroma_helpers import ChromaServer
from serving_helpers import free_port

from jinarag.errors import StoreUnavailableError
from jinarag.retrieval.index import HybridIndex

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def server(tmp_path, request):
    srv = ChromaServer(tmp_path / "chroma-data", free_port(), tmp_path / "chroma.log")
    request.addfinalizer(srv.stop)
    srv.start()
    return srv


def _snapshot_ids(folder: Path, collection: str) -> set[str]:
    return set(json.loads((folder / "jinarag-bm25" / f"{collection}.json").read_bytes())["ids"])


def test_server_mode_round_trip(server, minilm_embedder, tmp_path):
    snap = tmp_path / "snap"
    index = HybridIndex(path=snap, url=server.url, collection="papers", embedder=minilm_embedder)
    texts = ["Lift of a wing in a slipstream.", "Heat flux at Mach 5.", "Buckling of shells."]
    ids = index.add(texts, metadatas=[{"kind": "aero"}, {"kind": "heat"}, {"kind": "struct"}])
    assert server.ids("papers") == set(ids) == set(index.bm25_index.ids)
    hits = index.search("wing lift", k=2)
    assert hits[0].text == texts[0] and hits[0].dense is not None and hits[0].bm25 is not None
    assert [h.id for h in index.search("heat", where={"kind": "heat"}, mode="bm25")] == [ids[1]]
    # A second process-like client: the snapshot beside it is current, so it is loaded as is.
    os.utime(snap / "jinarag-bm25" / "papers.json", (1, 1))
    again = HybridIndex(path=snap, url=server.url, collection="papers", embedder=minilm_embedder)
    assert (snap / "jinarag-bm25" / "papers.json").stat().st_mtime == 1
    assert sorted(again.bm25_index.ids) == sorted(ids)
    # Without a path the BM25 side is rebuilt from the server.
    memory_only = HybridIndex(url=server.url, collection="papers", embedder=minilm_embedder)
    assert sorted(memory_only.bm25_index.ids) == sorted(ids)


def test_unreachable_server_names_the_url(minilm_embedder):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError) as info:
        HybridIndex(url=url, embedder=minilm_embedder)
    assert url in str(info.value) and "chroma run --path" in str(info.value)


def test_server_stopped_in_the_middle_of_an_ingest(server, minilm_embedder, tmp_path):
    snap = tmp_path / "snap"
    index = HybridIndex(
        path=snap, url=server.url, collection="ingest", embedder=minilm_embedder, batch_size=8
    )
    index.add(["written before the ingest"], ids=["before"])
    texts = [f"server ingest record {i} about flutter {i % 11}" for i in range(400)]
    failure: list[BaseException] = []

    def ingest() -> None:
        try:
            index.add(texts)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    worker = threading.Thread(target=ingest)
    worker.start()
    deadline = time.monotonic() + 300
    while len(server.ids("ingest")) < 1 + 24:
        assert worker.is_alive() and time.monotonic() < deadline, "the ingest did not progress"
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    worker.join(timeout=300)
    assert not worker.is_alive()

    assert len(failure) == 1 and isinstance(failure[0], StoreUnavailableError), failure
    message = str(failure[0])
    assert server.url in message and "chroma run --path" in message
    assert "repeating an interrupted add completes it" in message
    # The snapshot was not touched by the failed ingest: it is not ahead of the server.
    assert _snapshot_ids(snap, "ingest") == {"before"}

    server.start()
    stored = server.ids("ingest")
    assert "before" in stored and 1 + 24 <= len(stored) < 1 + len(texts)
    reopened = HybridIndex(
        path=snap, url=server.url, collection="ingest", embedder=minilm_embedder, batch_size=64
    )
    assert set(reopened.bm25_index.ids) == stored
    ids = reopened.add(texts)  # repeating the same call completes the ingest
    assert server.ids("ingest") == set(reopened.bm25_index.ids) == {"before", *ids}
    assert _snapshot_ids(snap, "ingest") == {"before", *ids}


def test_credentials_in_the_url_are_never_shown(server, minilm_embedder, tmp_path):
    url = server.url.replace("http://", "http://ana:s3cret@")
    index = HybridIndex(
        path=tmp_path / "snap", url=url, collection="auth", embedder=minilm_embedder
    )
    index.add(["a record sent with basic authentication"], ids=["a"])
    assert server.ids("auth") == {"a"}
    assert "s3cret" not in repr(index) and "***@127.0.0.1" in repr(index)
    report = index.verify()
    assert report.healthy and report.records == 1 and "s3cret" not in report.store
    server.stop()
    with pytest.raises(StoreUnavailableError) as info:
        index.add(["written after the server went away"], ids=["b"])
    assert "s3cret" not in str(info.value) and "http://***@127.0.0.1" in str(info.value)
