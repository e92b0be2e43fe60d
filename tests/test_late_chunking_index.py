"""Late chunking in the index, `jinarag index --late-chunking` and the server's `late_chunking`,
over real Chroma (embedded), the real MiniLM weights (max_length 256) and real HTTP clients."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
from pathlib import Path

import chromadb
import httpx
import numpy as np
import pytest
from chromadb.config import Settings

from jinarag.cli import main
from jinarag.errors import InputError
from jinarag.retrieval.index import HybridIndex
from jinarag.retrieval.ingest.late import late_chunk_many
from jinarag.retrieval.layout import DOC_HASH_KEY
from jinarag.retrieval.write.records import content_id
from jinarag.serving.app import create_app

FLYER = (
    "The Wright Flyer first flew in December 1903 at Kitty Hawk. It had a wingspan of about "
    "twelve metres and a canard elevator. Its engine gave twelve horsepower to two propellers."
)
SHELLS = (
    "Thin cylindrical shells buckle under axial compression. They fail at loads far below the "
    "classical estimate. Small imperfections of their shape explain most of the gap."
)
# About 700 tokens: longer than MiniLM's 256, so it is read in overlapping windows.
LONG = " ".join(
    f"Sentence {i} says the {word} flow over the swept wing changes its lift and its drag."
    for i, word in enumerate(["laminar", "turbulent", "separated", "attached"] * 10)
)


def _max_seq(path: Path) -> int:
    """The highest sequence number Chroma gave a write of a record (grows with every write)."""
    uri = f"{path.resolve().as_uri()}/chroma.sqlite3?mode=ro"
    with sqlite3.connect(uri, uri=True) as con:
        return int(con.execute("SELECT max(seq_id) FROM embeddings").fetchone()[0] or 0)


def _stored(path: Path, ids: list[str]) -> tuple[np.ndarray, list[dict]]:
    """The vectors and metadata (our keys included) Chroma holds for ``ids``, in that order."""
    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    got = client.get_collection("jinarag").get(ids=ids, include=["embeddings", "metadatas"])
    order = [got["ids"].index(i) for i in ids]
    return np.asarray(got["embeddings"])[order], [got["metadatas"][k] for k in order]


def _chunk_ids(index: HybridIndex, doc_id: str) -> list[str]:
    hits = index.get(where={"doc_id": doc_id})
    return [h.id for h in sorted(hits, key=lambda h: h.metadata["chunk"])]


# -- HybridIndex.add(chunking="late") ----------------------------------------------------------


def test_late_chunks_are_stored_with_their_late_vectors_and_spans(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    docs = [FLYER, SHELLS]
    ids = index.add(
        docs,
        ids=["flyer", "shells"],
        metadatas=[{"topic": "history"}, None],
        chunking="late",
        chunk_tokens=12,
    )
    expected = late_chunk_many(minilm_embedder, docs, chunk_tokens=12)
    rows = [
        (doc_id, doc, number, chunk)
        for doc_id, doc, chunks in zip(["flyer", "shells"], docs, expected, strict=True)
        for number, chunk in enumerate(chunks)
    ]
    assert ids == [f"{doc_id}#{number}" for doc_id, _, number, _ in rows]
    assert len(expected[0]) >= 3 and index.count() == len(ids)
    vectors, metas = _stored(tmp_path, ids)
    np.testing.assert_allclose(vectors, np.stack([row[3].vector for row in rows]), atol=1e-5)
    for hit, meta, (doc_id, doc, number, chunk) in zip(index.get(ids), metas, rows, strict=True):
        assert hit.text == chunk.text == doc[meta["span_start"] : meta["span_end"]]
        assert (meta["doc_id"], meta["chunk"]) == (doc_id, number)
        assert (meta["span_start"], meta["span_end"]) == chunk.span
        assert hit.metadata.get("topic") == ("history" if doc_id == "flyer" else None)
        assert "doc_hash" not in meta and "doc_hash" not in hit.metadata  # bookkeeping is ours
    assert len({m[DOC_HASH_KEY] for m in metas[: len(expected[0])]}) == 1
    assert metas[0][DOC_HASH_KEY] != metas[-1][DOC_HASH_KEY]
    # Each chunk was read with its document: not the vector of the chunk embedded alone.
    alone = minilm_embedder.embed_documents([expected[0][1].text])[0]
    assert np.abs(vectors[1] - alone).max() > 1e-3
    assert index.search("wingspan of the first aeroplane", k=1)[0].id.startswith("flyer#")


def test_a_document_without_an_id_gets_the_hash_id(minilm_embedder):
    index = HybridIndex(embedder=minilm_embedder)
    ids = index.add(
        [FLYER], metadatas=[{"topic": "history"}], chunking="late", chunk_by="sentences"
    )
    doc_id = content_id(FLYER, {"topic": "history"})
    assert ids == [f"{doc_id}#0", f"{doc_id}#1", f"{doc_id}#2"]
    assert [h.text for h in index.get(ids)] == [
        "The Wright Flyer first flew in December 1903 at Kitty Hawk.",
        "It had a wingspan of about twelve metres and a canard elevator.",
        "Its engine gave twelve horsepower to two propellers.",
    ]


def test_re_adding_the_same_documents_writes_nothing(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    ids = index.add([FLYER, SHELLS], ids=["f", "s"], chunking="late", chunk_by="sentences")
    before = (_max_seq(tmp_path), index.store.generation(), _stored(tmp_path, ids))
    assert index.add([FLYER, SHELLS], ids=["f", "s"], chunking="late", chunk_by="sentences") == ids
    after = (_max_seq(tmp_path), index.store.generation(), _stored(tmp_path, ids))
    assert after[:2] == before[:2]
    np.testing.assert_array_equal(after[2][0], before[2][0])
    assert after[2][1] == before[2][1]


def test_a_changed_sentence_re_embeds_every_chunk_of_its_document(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    ids = index.add([FLYER, SHELLS], ids=["f", "s"], chunking="late", chunk_by="sentences")
    old_vectors, old_metas = _stored(tmp_path, ids)
    changed = FLYER.replace("twelve horsepower to two propellers", "a chain drive to its rotors")
    seq = _max_seq(tmp_path)
    again = index.add([changed, SHELLS], ids=["f", "s"], chunking="late", chunk_by="sentences")
    assert again == ids
    new_vectors, new_metas = _stored(tmp_path, ids)
    expected = late_chunk_many(minilm_embedder, [changed], by="sentences")[0]
    # The first two chunks kept their text, yet their vectors follow the new document.
    assert [h.text for h in index.get(ids[:2])] == [c.text for c in expected[:2]]
    np.testing.assert_allclose(new_vectors[:3], np.stack([c.vector for c in expected]), atol=1e-5)
    assert np.abs(new_vectors[0] - old_vectors[0]).max() > 1e-4
    assert new_metas[0][DOC_HASH_KEY] != old_metas[0][DOC_HASH_KEY]
    # The other document was not written.
    np.testing.assert_array_equal(new_vectors[3:], old_vectors[3:])
    assert new_metas[3:] == old_metas[3:]
    assert _max_seq(tmp_path) == seq + 6  # three chunks, each deleted and added anew
    # Metadata alone changed: the chunks get it, with vectors still those of their document.
    metadatas = [{"year": 1903}]
    index.add([changed], ids=["f"], metadatas=metadatas, chunking="late", chunk_by="sentences")
    vectors, metas = _stored(tmp_path, ids[:3])
    assert [m["year"] for m in metas] == [1903] * 3
    np.testing.assert_allclose(vectors, np.stack([c.vector for c in expected]), atol=1e-5)
    report = index.verify()
    assert report.healthy and report.records == len(ids)


def test_a_document_re_added_as_fewer_chunks_loses_its_stale_ones(minilm_embedder, tmp_path):
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    index.add([FLYER, SHELLS], ids=["f", "s"], chunking="late", chunk_by="sentences")
    short = "The Wright Flyer first flew in December 1903 at Kitty Hawk."
    assert index.add([short], ids=["f"], chunking="late", chunk_by="sentences") == ["f#0"]
    assert _chunk_ids(index, "f") == ["f#0"]
    assert _chunk_ids(index, "s") == ["s#0", "s#1", "s#2"]
    assert set(index.bm25_index.ids) == {h.id for h in index.get()}
    np.testing.assert_allclose(
        _stored(tmp_path, ["f#0"])[0][0], minilm_embedder.embed_late_chunks([short])[0], atol=1e-5
    )


def test_a_document_longer_than_the_model_is_read_in_windows(minilm_embedder, tmp_path):
    assert minilm_embedder.tokenizer.count_tokens(LONG) > 2 * minilm_embedder.max_length
    index = HybridIndex(tmp_path, embedder=minilm_embedder)
    ids = index.add([LONG], ids=["long"], chunking="late", chunk_tokens=64)
    expected = late_chunk_many(minilm_embedder, [LONG], chunk_tokens=64)[0]
    hits = index.get(ids)
    assert len(hits) == len(expected) > 8
    assert [h.text for h in hits] == [c.text for c in expected]
    assert all(LONG[h.metadata["span_start"] : h.metadata["span_end"]] == h.text for h in hits)
    np.testing.assert_allclose(
        _stored(tmp_path, ids)[0], np.stack([c.vector for c in expected]), atol=1e-5
    )
    # The windows share context: read without an overlap, chunks near a window's edge differ.
    plain = minilm_embedder.embed_late_chunks([h.text for h in hits], overlap=0)
    assert np.abs(plain - _stored(tmp_path, ids)[0]).max() > 1e-4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunking": "early"}, "unknown chunking 'early'; choose one of None, late"),
        ({"chunking": True}, "unknown chunking True"),
        ({"chunk_tokens": 64}, "chunk_tokens=64 applies to late chunking only; pass chunking="),
        ({"chunk_by": "sentences"}, "chunk_by='sentences' applies to late chunking only"),
        ({"chunking": "late", "chunk_by": "words"}, "unknown chunk_by 'words'; choose one of"),
        ({"chunking": "late", "chunk_tokens": 0}, "chunk_tokens must be a positive integer"),
        ({"chunking": "late", "texts": [FLYER, "  "]}, r"texts\[1\] is empty or blank"),
        (
            {"chunking": "late", "metadatas": [None, {"chunk": 3}]},
            r"metadatas\[1\] has the key 'chunk', which late chunking sets",
        ),
        ({"chunking": "late", "ids": ["a", "a"]}, "duplicate ids"),
    ],
)
def test_bad_late_chunking_arguments_are_refused_before_any_write(minilm_embedder, kwargs, message):
    index = HybridIndex(embedder=minilm_embedder)
    texts = kwargs.pop("texts", [FLYER, SHELLS])
    with pytest.raises(InputError, match=message):
        index.add(texts, **kwargs)
    assert index.count() == 0


# -- jinarag index --late-chunking -------------------------------------------------------------


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "flyer.md").write_text(FLYER, encoding="utf-8")
    (folder / "shells.txt").write_text(SHELLS, encoding="utf-8")
    rows = [{"_id": "h1", "text": "heat transfer to a blunt body at Mach 5", "year": 1960}]
    (folder / "papers.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return folder


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_index_late_chunking_then_search(docs, tmp_path, capsys, minilm_dir, minilm_embedder):
    store = tmp_path / "store"
    args = ["index", docs, "--store", store, "--model", minilm_dir, "--late-chunking",
            "--chunk-tokens", "12", "--quiet"]  # fmt: skip
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    index = HybridIndex(store, embedder=minilm_embedder)
    assert out.startswith("added 3, updated 0, unchanged 0, removed 0, skipped 0; ")
    assert f"{index.count()} chunks written, 0 removed" in out
    flyer_id = "flyer.md"  # the path relative to the folder indexed
    ids = _chunk_ids(index, flyer_id)
    expected = late_chunk_many(minilm_embedder, [FLYER], chunk_tokens=12)[0]
    assert ids == [f"{flyer_id}#{n}" for n in range(len(expected))] and len(ids) >= 3
    np.testing.assert_allclose(
        _stored(store, ids)[0], np.stack([c.vector for c in expected]), atol=1e-5
    )
    assert index.get(["h1#0"])[0].metadata["year"] == 1960
    code, out, err = _run(capsys, "search", "wingspan of the Wright Flyer", "--store", store,
                          "--model", minilm_dir, "--k", "3")  # fmt: skip
    assert code == 0, err
    assert re.search(r"flyer\.md#\d", out)

    # Re-run unchanged: nothing written. Then a shorter document: its stale chunks go.
    seq = _max_seq(store)
    assert _run(capsys, *args)[0] == 0 and _max_seq(store) == seq
    (docs / "flyer.md").write_text("The Wright Flyer flew in 1903.", encoding="utf-8")
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "updated 1, unchanged 2" in out and f", {len(ids) - 1} removed;" in out
    index = HybridIndex(store, embedder=minilm_embedder)
    assert _chunk_ids(index, flyer_id) == [f"{flyer_id}#0"]
    assert index.get([f"{flyer_id}#0"])[0].text == "The Wright Flyer flew in 1903."
    assert set(index.bm25_index.ids) == {h.id for h in index.get()}


def test_index_refuses_overlap_with_late_chunking(docs, tmp_path, capsys, minilm_dir):
    code, _, err = _run(capsys, "index", docs, "--store", tmp_path / "store", "--model",
                        minilm_dir, "--late-chunking", "--overlap", "4")  # fmt: skip
    assert code == 1
    assert "--overlap 4 does not apply with --late-chunking" in err and "leave --overlap out" in err
    assert not (tmp_path / "store").exists()


# -- POST /v1/embeddings with late_chunking ----------------------------------------------------

CHUNKS = [
    "The Wright Flyer first flew in December 1903.",
    "It had a wingspan of about twelve metres.",
    "Its engine gave twelve horsepower.",
]


@pytest.fixture(scope="module")
def app(minilm_embedder):
    return create_app({"minilm": minilm_embedder}, None)


def _post(app, payload: dict) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            return await client.post("/v1/embeddings", json=payload)

    return asyncio.run(go())


def _vectors(response: httpx.Response) -> np.ndarray:
    body = response.json()
    assert [item["index"] for item in body["data"]] == list(range(len(body["data"])))
    return np.array([item["embedding"] for item in body["data"]], dtype=np.float32)


def test_late_chunking_embeds_the_input_as_one_document(app, minilm_embedder):
    response = _post(app, {"input": CHUNKS, "late_chunking": True})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        _vectors(response), minilm_embedder.embed_late_chunks(CHUNKS), atol=1e-6
    )
    tokens = minilm_embedder.tokenizer.count_tokens(" ".join(CHUNKS))
    assert response.json()["usage"] == {"total_tokens": tokens, "prompt_tokens": tokens}
    # Not the chunks embedded one by one: the late_chunking field is not ignored.
    plain = _vectors(_post(app, {"input": CHUNKS}))
    assert np.abs(plain - _vectors(response)).max() > 1e-3
    payload = {"input": CHUNKS, "late_chunking": True, "normalized": False}
    raw = _post(app, {**payload, "embedding_type": "base64"})
    decoded = np.stack(
        [np.frombuffer(base64.b64decode(item["embedding"]), "<f4") for item in raw.json()["data"]]
    )
    np.testing.assert_allclose(
        decoded, minilm_embedder.embed_late_chunks(CHUNKS, normalize=False), atol=1e-5
    )


def test_the_openai_client_sends_late_chunking(app, minilm_embedder):
    openai = pytest.importorskip("openai")

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as http:
            client = openai.AsyncOpenAI(
                api_key="unused", base_url="http://jinarag/v1", http_client=http, max_retries=0
            )
            return await client.embeddings.create(
                model="minilm", input=CHUNKS, extra_body={"late_chunking": True}
            )

    result = asyncio.run(go())
    served = np.array([item.embedding for item in result.data], dtype=np.float32)
    np.testing.assert_allclose(served, minilm_embedder.embed_late_chunks(CHUNKS), atol=1e-6)


def test_a_long_document_is_windows_with_truncate_and_refused_without(app, minilm_embedder):
    chunks = [s.rstrip(".") + "." for s in LONG.split(". ")]
    refused = _post(app, {"input": chunks, "late_chunking": True, "truncate": False})
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "more than max_length=256" in detail and "truncate=true" in detail
    served = _post(app, {"input": chunks, "late_chunking": True})
    assert served.status_code == 200, served.text
    np.testing.assert_allclose(
        _vectors(served), minilm_embedder.embed_late_chunks(chunks), atol=1e-5
    )
    assert served.json()["usage"]["total_tokens"] == minilm_embedder.tokenizer.count_tokens(
        " ".join(chunks)
    )


@pytest.mark.parametrize(
    ("payload", "status", "piece"),
    [
        ({"input": CHUNKS, "late_chunking": "yes"}, 422, "late_chunking='yes'"),
        ({"input": CHUNKS, "late_chunking": 1}, 422, "late_chunking=1"),
        ({"input": ["a wing", "  "], "late_chunking": True}, 400, "input[1] is empty or blank"),
        ({"input": [], "late_chunking": True}, 400, "input is an empty list"),
    ],
)
def test_bad_late_chunking_requests_are_4xx_naming_the_value(app, payload, status, piece):
    response = _post(app, payload)
    assert response.status_code == status
    assert piece in response.json()["detail"]


def test_a_late_chunking_request_over_the_token_limit_is_413(minilm_embedder):
    small = create_app(minilm_embedder, None, max_request_tokens=100)
    chunks = [s.rstrip(".") + "." for s in LONG.split(". ")]
    response = _post(small, {"input": chunks, "late_chunking": True})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "more than this server's limit of 100" in detail and "--max-request-tokens" in detail
