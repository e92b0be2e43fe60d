"""jina-embeddings-v3's ``task`` and ``dimensions``, and jina-reranker-v2, through every
surface: the LangChain, LlamaIndex, Haystack and Chroma adapters, the server (in process) and
the remote models; each the core's own result, and each bad value a named error.

Tiny random checkpoints in the real layouts (tests/tiny_xlmr_checkpoints.py), on the CPU.
"""

from __future__ import annotations

import asyncio

import chromadb
import httpx
import numpy as np
import pytest
from haystack import Document as HaystackDocument
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from tiny_checkpoints import build_variant
from tiny_xlmr_checkpoints import build_reranker_v2, build_v3

from jinarag import Embedder, Reranker
from jinarag.chroma import JinaEmbeddingFunction
from jinarag.errors import EmbedderMismatchError, InputError
from jinarag.haystack import JinaDocumentEmbedder, JinaRanker, JinaTextEmbedder
from jinarag.langchain import JinaEmbeddings, JinaReranker
from jinarag.llama_index import JinaEmbedding, JinaRerank
from jinarag.serving.app import create_app

TEXTS = ["the wing in a slipstream", "boundary layer heat transfer at high mach number", "drag"]
QUERY = "wing flutter"
TASK, QUERY_TASK, DIMS = "text-matching", "separation", 8
CLOSE = 1e-6
LOCAL = {"device": "cpu", "backend": "torch"}


@pytest.fixture(scope="module")
def v3_dir(tmp_path_factory):
    return build_v3(tmp_path_factory.mktemp("v3") / "v3")


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return build_reranker_v2(tmp_path_factory.mktemp("r2") / "reranker-v2")


@pytest.fixture(scope="module")
def v3(v3_dir):
    return Embedder.from_pretrained(str(v3_dir), **LOCAL)


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    directory = build_variant("v2_geglu_8h", tmp_path_factory.mktemp("v2") / "v2")
    return Embedder.from_pretrained(str(directory), **LOCAL)


@pytest.fixture(scope="module")
def reranker(reranker_dir):
    return Reranker.from_pretrained(str(reranker_dir), **LOCAL)


@pytest.fixture(scope="module")
def expected(v3):
    """The core's own vectors: documents with TASK, queries with QUERY_TASK, cut to DIMS."""
    return {
        "documents": v3.embed(TEXTS, task=TASK, dimensions=DIMS),
        "query": v3.embed_query(QUERY, task=QUERY_TASK, dimensions=DIMS),
    }


def assert_close(actual, wanted) -> None:
    actual = np.asarray(actual, dtype=np.float32)
    assert actual.shape == wanted.shape
    assert np.abs(actual - wanted).max() <= CLOSE


FIELDS = {"task": TASK, "query_task": QUERY_TASK, "dimensions": DIMS}


# ------------------------------------------------------------------------------ the adapters


def test_langchain_embeddings_pass_task_and_dimensions(v3_dir, expected):
    embeddings = JinaEmbeddings(str(v3_dir), **LOCAL, **FIELDS)
    assert_close(embeddings.embed_documents(TEXTS), expected["documents"])
    assert_close(embeddings.embed_query(QUERY), expected["query"])
    assert (embeddings.task, embeddings.query_task, embeddings.dimensions) == (TASK, QUERY_TASK, 8)


def test_llama_index_embedding_passes_task_and_dimensions(v3, expected):
    model = JinaEmbedding(embedder=v3, **FIELDS)
    assert_close(model.get_text_embedding_batch(TEXTS), expected["documents"])
    assert_close(model.get_query_embedding(QUERY), expected["query"])
    assert {key: model.to_dict()[key] for key in FIELDS} == FIELDS


def test_haystack_embedders_pass_task_and_dimensions_and_serialise_them(v3_dir, expected):
    documents = JinaDocumentEmbedder(str(v3_dir), progress_bar=False, **LOCAL, **FIELDS)
    texts = JinaTextEmbedder(str(v3_dir), **LOCAL, **FIELDS)
    for component in (documents, texts):
        data = component.to_dict()
        assert {key: data["init_parameters"][key] for key in FIELDS} == FIELDS
        again = type(component).from_dict(data)
        assert again.task_fields == component.task_fields
    embedded = documents.run(documents=[HaystackDocument(content=t) for t in TEXTS])
    assert_close([doc.embedding for doc in embedded["documents"]], expected["documents"])
    assert_close(texts.run(text=QUERY)["embedding"], expected["query"])


def test_chroma_function_passes_task_and_dimensions_and_keeps_them_in_its_config(v3_dir, expected):
    function = JinaEmbeddingFunction(str(v3_dir), **LOCAL, **FIELDS)
    config = function.get_config()
    assert {key: config[key] for key in FIELDS} == FIELDS
    rebuilt = JinaEmbeddingFunction.build_from_config(config)
    for each in (function, rebuilt):
        assert_close(each(TEXTS), expected["documents"])
        assert_close(each.embed_query([QUERY])[0], expected["query"])
    collection = chromadb.EphemeralClient().create_collection(
        "v3_surfaces", embedding_function=function
    )
    collection.add(ids=["a", "b", "c"], documents=TEXTS)
    stored = collection.get(ids=["a"], include=["embeddings"])["embeddings"][0]
    assert_close(stored, expected["documents"][0])
    with pytest.raises(EmbedderMismatchError, match="dimensions"):
        function.validate_config_update(config, {**config, "dimensions": 16})


def test_defaults_are_the_models_own_tasks(v3):
    embeddings = JinaEmbeddings(embedder=v3)
    assert_close(embeddings.embed_documents(TEXTS), v3.embed(TEXTS, task="retrieval.passage"))
    assert_close(embeddings.embed_query(QUERY), v3.embed_query(QUERY, task="retrieval.query"))


def test_rerankers_rank_with_reranker_v2(reranker_dir, reranker):
    best = reranker.rank(QUERY, TEXTS, top_n=2)
    wanted = [TEXTS[r.index] for r in best]
    scores = np.array([r.score for r in best])

    langchain = JinaReranker(str(reranker_dir), top_n=2, **LOCAL)
    kept = langchain.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert [doc.page_content for doc in kept] == wanted
    assert_close([doc.metadata["relevance_score"] for doc in kept], scores)

    llama = JinaRerank(str(reranker_dir), top_n=2, **LOCAL)
    nodes = [NodeWithScore(node=TextNode(text=t)) for t in TEXTS]
    ranked = llama.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [n.node.get_content() for n in ranked] == wanted
    assert_close([n.score for n in ranked], scores)

    haystack = JinaRanker(str(reranker_dir), top_k=2, **LOCAL)
    out = haystack.run(query=QUERY, documents=[HaystackDocument(content=t) for t in TEXTS])
    assert [doc.content for doc in out["documents"]] == wanted
    assert_close([doc.score for doc in out["documents"]], scores)


# --------------------------------------------------------------------- bad values, by surface

BAD = [
    ("v3", {"task": "retrieval"}, r"not a task of .*retrieval\.query"),
    ("v3", {"query_task": "retrieval"}, r"query_task='retrieval' is not a task"),
    ("v3", {"dimensions": 3}, r"dimensions=3 is out of range .* from 4 to 40"),
    ("v3", {"dimensions": 41}, r"dimensions=41 is out of range"),
    ("v3", {"dimensions": "8"}, r"dimensions must be a positive integer"),
    ("v3", {"task": 1}, r"task=1 must be a task name"),
    ("v2", {"dimensions": 8}, r"dimensions=8 needs a Matryoshka model"),
    ("v2", {"task": "retrieval.query"}, r"task='retrieval.query' needs a model with task"),
]


def _make(surface: str, embedder: Embedder, fields: dict):
    if surface == "langchain":
        return JinaEmbeddings(embedder=embedder, **fields)
    if surface == "llama_index":
        return JinaEmbedding(embedder=embedder, **fields)
    if surface == "chroma":
        return JinaEmbeddingFunction(embedder=embedder, **fields)
    component = JinaTextEmbedder(str(embedder.source), **LOCAL, **fields)
    component.warm_up()  # Haystack loads (and so checks against the model) at warm_up
    return component


@pytest.mark.parametrize("surface", ["langchain", "llama_index", "haystack", "chroma"])
@pytest.mark.parametrize(("which", "fields", "match"), BAD)
def test_bad_task_or_dimensions_is_refused_when_the_adapter_is_made(
    v3, v2, surface, which, fields, match
):
    with pytest.raises(InputError, match=match):
        _make(surface, v3 if which == "v3" else v2, fields)


def test_late_chunk_documents_pass_on_task_and_dimensions(v3):
    embeddings = JinaEmbeddings(embedder=v3, task="separation", dimensions=DIMS)
    text = "the wing in a slipstream was made to determine the drag"
    chunks, vectors = embeddings.late_chunk_documents(
        [Document(page_content=text, id="d")], chunk_tokens=8
    )
    texts = [c.page_content for c in chunks]
    assert len(texts) > 1 and all(len(v) == DIMS for v in vectors)
    assert_close(vectors, v3.embed_late_chunks(texts, task="separation", dimensions=DIMS))
    pieces = ["the wing in a slipstream", "was made to", "determine the drag"]
    assert_close(
        embeddings.embed_late_chunks(pieces),
        v3.embed_late_chunks(pieces, task="separation", dimensions=DIMS),
    )


# ---------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def app(v3, v2, reranker):
    return create_app({"v3": v3, "v2": v2}, {"reranker-v2": reranker})


def call(app, method: str, path: str, payload=None) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jinarag") as client:
            return await client.request(method, path, json=payload)

    return asyncio.run(send())


def vectors(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)


def test_server_takes_jinas_task_and_dimensions(app, v3, expected):
    body = {"model": "v3", "input": TEXTS, "task": TASK, "dimensions": DIMS}
    assert_close(vectors(call(app, "POST", "/v1/embeddings", body)), expected["documents"])
    query = {"model": "v3", "input": [QUERY], "task": QUERY_TASK, "dimensions": DIMS}
    assert_close(vectors(call(app, "POST", "/v1/embeddings", query))[0], expected["query"])
    # No task: the document side's default, as Embedder.embed.
    plain = call(app, "POST", "/v1/embeddings", {"model": "v3", "input": TEXTS})
    assert_close(vectors(plain), v3.embed(TEXTS))
    # OpenAI's shape: dimensions with encoding_format.
    openai = {"model": "v3", "input": TEXTS, "dimensions": 16, "encoding_format": "float"}
    assert_close(
        vectors(call(app, "POST", "/v1/embeddings", openai)), v3.embed(TEXTS, dimensions=16)
    )


def test_server_late_chunking_with_a_task(app, v3):
    body = {
        "model": "v3",
        "input": TEXTS,
        "late_chunking": True,
        "task": "classification",
        "dimensions": DIMS,
    }
    wanted = v3.embed_late_chunks(TEXTS, task="classification", dimensions=DIMS)
    assert_close(vectors(call(app, "POST", "/v1/embeddings", body)), wanted)


def test_server_lists_tasks_and_dimensions(app, v3):
    entries = {e["id"]: e for e in call(app, "GET", "/v1/models").json()["data"]}
    assert entries["v3"]["tasks"] == list(v3.tasks)
    assert entries["v3"]["dimensions_allowed"] == list(v3.dimensions_allowed)
    assert entries["v2"]["tasks"] == entries["v2"]["dimensions_allowed"] == []
    assert "tasks" not in entries["reranker-v2"]


def test_server_reranks_with_reranker_v2(app, reranker):
    answer = call(app, "POST", "/v1/rerank", {"query": QUERY, "documents": TEXTS, "top_n": 2})
    assert answer.status_code == 200, answer.text
    ranked = reranker.rank(QUERY, TEXTS, top_n=2)
    assert [r["index"] for r in answer.json()["results"]] == [r.index for r in ranked]
    got = [r["relevance_score"] for r in answer.json()["results"]]
    assert_close(got, np.array([r.score for r in ranked]))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"model": "v3", "task": "retrieval"}, "is not a task of v3"),
        ({"model": "v3", "dimensions": 3}, "out of range for v3"),
        ({"model": "v3", "dimensions": 41, "late_chunking": True}, "out of range"),
        ({"model": "v2", "task": "retrieval.query"}, "has no task adapters"),
        ({"model": "v2", "dimensions": 8}, "cannot shorten them"),
    ],
)
def test_server_refuses_what_the_model_lacks_with_a_detail(app, body, match):
    answer = call(app, "POST", "/v1/embeddings", {"input": TEXTS, **body})
    assert answer.status_code == 400
    assert match in answer.json()["detail"]
    assert "/" not in answer.json()["detail"].split(";")[0]  # no path of the server's disk


def test_v2_keeps_accepting_its_own_dimensions(app, v2):
    body = {"model": "v2", "input": TEXTS, "dimensions": v2.dim}
    assert_close(vectors(call(app, "POST", "/v1/embeddings", body)), v2.embed(TEXTS))


# ------------------------------------------------------------------ remote models (a server)


@pytest.mark.slow
def test_remote_embedder_and_adapters_over_a_v3_server(v3_dir, v3, expected, tmp_path):
    from serving_helpers import Server

    from jinarag.inference.remote import RemoteEmbedder

    server = Server(
        ["--model", str(v3_dir), "--no-reranker", "--backend", "torch"], tmp_path / "log"
    )
    try:
        remote = RemoteEmbedder(server.url)
        assert remote.tasks == v3.tasks and remote.dimensions_allowed == v3.dimensions_allowed
        assert_close(remote.embed(TEXTS, task=TASK, dimensions=DIMS), expected["documents"])
        assert_close(remote.embed_query(QUERY), v3.embed_query(QUERY))  # retrieval.query
        assert_close(remote.embed(TEXTS), v3.embed(TEXTS))
        late = remote.embed_late_chunks(TEXTS, task="classification", dimensions=DIMS)
        assert_close(late, v3.embed_late_chunks(TEXTS, task="classification", dimensions=DIMS))
        with pytest.raises(InputError, match="out of range"):
            remote.embed(TEXTS, dimensions=3)
        langchain = JinaEmbeddings(base_url=server.url, **FIELDS)
        assert_close(langchain.embed_documents(TEXTS), expected["documents"])
        assert_close(langchain.embed_query(QUERY), expected["query"])
        haystack = JinaTextEmbedder(base_url=server.url, **FIELDS)
        assert_close(haystack.run(text=QUERY)["embedding"], expected["query"])
        bad = JinaEmbedding(base_url=server.url, task="retrieval")  # checked at the first call
        with pytest.raises(InputError, match="not a task of"):
            bad.get_text_embedding("a wing")
    finally:
        server.stop()


# ------------------------------------------------------------------------------- the CLI


def test_cli_index_and_search_use_the_default_tasks(v3_dir, v3, tmp_path, capsys):
    import json

    from jinarag.cli import main
    from jinarag.retrieval.index import HybridIndex

    docs = tmp_path / "docs"
    docs.mkdir()
    for number, text in enumerate(TEXTS):
        (docs / f"{number}.txt").write_text(text, encoding="utf-8")
    store = tmp_path / "store"
    assert main(["index", str(docs), "--store", str(store), "--model", str(v3_dir), "--quiet"]) == 0
    index = HybridIndex(store, embedder=v3)
    hits = index.get()
    ids, stored = index.store.embeddings([hit.id for hit in hits])
    by_id = {hit.id: hit.text for hit in hits}
    passages = v3.embed_documents([by_id[i] for i in ids], task="retrieval.passage")
    assert_close(stored, passages)
    capsys.readouterr()
    argv = ["search", QUERY, "--store", str(store), "--model", str(v3_dir), "--mode", "dense"]
    assert main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    query = v3.embed_query(QUERY, task="retrieval.query")
    similarity = dict(zip(ids, np.asarray(stored) @ query, strict=True))
    for hit in found:
        assert abs(hit["dense"]["score"] - similarity[hit["id"]]) < 1e-5
