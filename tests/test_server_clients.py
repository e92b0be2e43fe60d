"""The clients of the hosted APIs, unchanged, against a real `jinarag serve`: each gets the
vectors of `Embedder.embed` and the scores of `Reranker.score` (max |diff| 1e-5) through its
own public API, in a real flow where one is cheap.

- OpenAI's API: the `openai` client (base64 by default, float, base64), LangChain's
  `OpenAIEmbeddings` in a vector store, Haystack's `OpenAITextEmbedder`.
- Jina's API: the Haystack Jina components in a retrieval pipeline (their `base_url` is the
  whole endpoint URL) and LlamaIndex's `JinaRerank` in a query engine (`base_url` ends in /v1).
  LlamaIndex's `JinaEmbedding` cannot be pointed at a server (its constructor takes no URL), so
  the binary encodings it asks for are checked over HTTP against sentence-transformers'
  `quantize_embeddings`, and decoded by the LlamaIndex module's own request helper.
- Hugging Face TEI: LlamaIndex's `TextEmbeddingsInference`, Chroma's
  `HuggingFaceEmbeddingServer`; `/rerank` and `/info` over HTTP, `/metrics` read by the
  Prometheus parser.
- The API key: a wrong one is each client's own error, the right one works, and every route
  but /health and /ready asks for it.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
from serving_helpers import Server, assert_packed_signs, assert_sign_bits

pytestmark = pytest.mark.slow

TEXTS = ["shock waves on a cone", "heat transfer in a slab", "flutter of a swept wing"]
QUERY = "wing flutter at transonic speed"
ATOL = 1e-5
KEY = "a-test-key-4f1c"


@pytest.fixture(scope="module")
def server(minilm_dir, minilm_reranker_dir, tmp_path_factory):
    """`jinarag serve` with MiniLM as "minilm" and the MiniLM cross-encoder as
    "minilm-reranker", at their checkpoints' own max_length."""
    server = Server(
        [
            "--model",
            f"minilm={minilm_dir}",
            "--reranker",
            f"minilm-reranker={minilm_reranker_dir}",
            "--host",
            "127.0.0.1",
        ],
        tmp_path_factory.mktemp("serve") / "log",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_server(minilm_dir, minilm_reranker_dir, tmp_path_factory):
    """The same models behind an API key, given in the environment."""
    server = Server(
        ["--model", f"minilm={minilm_dir}", "--reranker", f"minilm-reranker={minilm_reranker_dir}"],
        tmp_path_factory.mktemp("serve-keyed") / "log",
        env={"JINARAG_API_KEY": KEY},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vectors(minilm_embedder) -> np.ndarray:
    return minilm_embedder.embed(TEXTS)


@pytest.fixture(scope="module")
def query_vector(minilm_embedder) -> np.ndarray:
    return minilm_embedder.embed([QUERY])[0]


def openai_client(url: str, api_key: str = "unused"):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0)


def assert_close(got, expected) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, rtol=0, atol=ATOL)


def detail(error) -> str:
    """The server's reason in an `openai.APIStatusError`: the client keeps the `error` object
    of the JSON body (OpenAI's shape, which the server sends beside `detail`), and shows its
    message in the exception's text."""
    assert isinstance(error.body, dict), error.body
    assert error.body["message"] in str(error)
    return error.body["message"]


def ranked(reranker, top_n: int | None = None) -> tuple[list[str], list[float]]:
    """The texts best first and their scores, as `Reranker.rank` orders `Reranker.score`."""
    expected = reranker.rank(QUERY, TEXTS, top_n=top_n)
    return [TEXTS[e.index] for e in expected], [e.score for e in expected]


# ---------------------------------------------------------------------------------------------
# OpenAI's API


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_openai_client_gets_the_embedders_vectors(server, vectors, encoding_format):
    """Without `encoding_format` the client asks for base64 itself and decodes it."""
    given = {} if encoding_format is None else {"encoding_format": encoding_format}
    response = openai_client(server.url).embeddings.create(model="minilm", input=TEXTS, **given)
    assert response.model == "minilm"
    assert [item.index for item in response.data] == [0, 1, 2]
    if encoding_format == "base64":  # the client hands base64 back as sent
        rows = [np.frombuffer(base64.b64decode(item.embedding), "<f4") for item in response.data]
    else:
        rows = [item.embedding for item in response.data]
    assert_close(rows, vectors)
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(TEXTS)


def test_openai_client_lists_the_loaded_models(server):
    ids = {model.id for model in openai_client(server.url).models.list()}
    assert {"minilm", "minilm-reranker"} <= ids


def test_openai_client_an_unknown_model_is_not_found_naming_the_loaded_ones(server):
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        openai_client(server.url).embeddings.create(
            model="text-embedding-3-small", input=TEXTS[:1], encoding_format="float"
        )
    assert "text-embedding-3-small" in detail(info.value) and "minilm" in detail(info.value)


def test_openai_client_token_ids_are_refused_with_a_client_error(server):
    import openai

    with pytest.raises(openai.APIStatusError) as info:
        openai_client(server.url).embeddings.create(model="minilm", input=[[101, 7592, 102]])
    assert 400 <= info.value.status_code < 500
    assert "token" in detail(info.value).lower()


def test_openai_client_dimensions_must_be_the_models_own(server, vectors):
    import openai

    client = openai_client(server.url)
    response = client.embeddings.create(
        model="minilm", input=TEXTS[0], dimensions=384, user="someone", encoding_format="float"
    )
    assert_close([response.data[0].embedding], vectors[:1])
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model="minilm", input=TEXTS[0], dimensions=128)
    assert 400 <= info.value.status_code < 500
    assert "384" in detail(info.value)


def test_langchain_openai_embeddings_in_a_vector_store(server, vectors, query_vector):
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        base_url=f"{server.url}/v1",
        api_key="unused",
        model="minilm",
        check_embedding_ctx_length=False,  # else it sends tiktoken ids, which are not MiniLM's
        max_retries=0,
    )
    assert_close(embeddings.embed_documents(TEXTS), vectors)
    assert_close([embeddings.embed_query(QUERY)], query_vector[None])

    store = InMemoryVectorStore.from_texts(TEXTS, embeddings)
    hits = store.similarity_search_with_score(QUERY, k=3)
    cosine = vectors @ query_vector  # unit vectors
    order = np.argsort(-cosine)
    assert [doc.page_content for doc, _ in hits] == [TEXTS[i] for i in order]
    assert [score for _, score in hits] == pytest.approx(cosine[order].tolist(), abs=ATOL)


def test_haystack_openai_text_embedder(server, query_vector):
    from haystack.components.embedders import OpenAITextEmbedder
    from haystack.utils import Secret

    embedder = OpenAITextEmbedder(
        api_base_url=f"{server.url}/v1", api_key=Secret.from_token("unused"), model="minilm"
    )
    result = embedder.run(QUERY)
    assert_close([result["embedding"]], query_vector[None])
    assert result["meta"]["model"] == "minilm"


# ---------------------------------------------------------------------------------------------
# Jina's API


def test_haystack_jina_components_in_a_retrieval_pipeline(
    server, minilm_embedder, minilm_reranker, vectors, query_vector
):
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import Secret
    from haystack_integrations.components.embedders.jina import (
        JinaDocumentEmbedder,
        JinaTextEmbedder,
    )
    from haystack_integrations.components.rankers.jina import JinaRanker

    key = Secret.from_token("unused")
    embeddings_url = f"{server.url}/v1/embeddings"
    document_embedder = JinaDocumentEmbedder(
        api_key=key, model="minilm", batch_size=2, progress_bar=False, base_url=embeddings_url
    )
    embedded = document_embedder.run([Document(content=text) for text in TEXTS])
    assert_close([doc.embedding for doc in embedded["documents"]], vectors)
    assert embedded["meta"]["model"] == "minilm"
    # Two requests (batches of 2 and 1); the component adds up their usage.
    tokens = sum(minilm_embedder.tokenizer.count_tokens(text) for text in TEXTS)
    assert embedded["meta"]["usage"]["total_tokens"] == tokens

    store = InMemoryDocumentStore()
    store.write_documents(embedded["documents"])
    pipeline = Pipeline()
    pipeline.add_component(
        "embedder", JinaTextEmbedder(api_key=key, model="minilm", base_url=embeddings_url)
    )
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=3))
    pipeline.add_component(
        "ranker",
        JinaRanker(
            model="minilm-reranker", api_key=key, top_k=2, base_url=f"{server.url}/v1/rerank"
        ),
    )
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "ranker.documents")
    result = pipeline.run(
        {"embedder": {"text": QUERY}, "ranker": {"query": QUERY}}, include_outputs_from={"embedder"}
    )

    assert_close([result["embedder"]["embedding"]], query_vector[None])
    texts, scores = ranked(minilm_reranker, top_n=2)
    documents = result["ranker"]["documents"]
    assert [doc.content for doc in documents] == texts
    assert [doc.score for doc in documents] == pytest.approx(scores, abs=ATOL)
    assert result["ranker"]["meta"]["model"] == "minilm-reranker"


def test_haystack_jina_ranker_scores_are_the_rerankers(server, minilm_reranker):
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.jina import JinaRanker

    ranker = JinaRanker(
        model="minilm-reranker",
        api_key=Secret.from_token("unused"),
        base_url=f"{server.url}/v1/rerank",
    )
    documents = [Document(content=text, meta={"n": n}) for n, text in enumerate(TEXTS)]
    result = ranker.run(query=QUERY, documents=documents)
    scores = minilm_reranker.score(QUERY, TEXTS)
    got = {doc.meta["n"]: doc.score for doc in result["documents"]}
    assert sorted(got) == [0, 1, 2]
    assert [got[n] for n in range(3)] == pytest.approx(scores.tolist(), abs=ATOL)
    assert [doc.score for doc in result["documents"]] == sorted(got.values(), reverse=True)


def test_llama_index_tei_embeddings_and_jina_rerank_in_a_query_engine(
    server, minilm_reranker, vectors, query_vector
):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    embed_model = TextEmbeddingsInference(base_url=server.url, model_name="minilm")
    assert_close(embed_model.get_text_embedding_batch(TEXTS), vectors)
    assert_close([embed_model.get_query_embedding(QUERY)], query_vector[None])

    nodes = [TextNode(text=text, id_=f"node-{n}") for n, text in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    rerank = JinaRerank(
        base_url=f"{server.url}/v1", api_key="unused", model="minilm-reranker", top_n=2
    )
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=3, node_postprocessors=[rerank])
    response = engine.query(QUERY)

    texts, scores = ranked(minilm_reranker, top_n=2)
    assert [node.node.get_content() for node in response.source_nodes] == texts
    assert [node.score for node in response.source_nodes] == pytest.approx(scores, abs=ATOL)


def test_jina_shape_text_objects_base64_and_the_default_model(server, vectors):
    response = server.post(
        "/v1/embeddings",
        {"input": [{"text": text} for text in TEXTS], "embedding_type": "base64"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "minilm"  # no model asked for: the first one loaded
    assert_close(
        [np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in body["data"]], vectors
    )


@pytest.mark.parametrize("field", ["embedding_type", "encoding_type"])
@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_embeddings_are_sentence_transformers_quantization(
    server, vectors, field, precision
):
    """What LlamaIndex's `JinaEmbedding(encoding_queries=precision)` asks for (as
    `encoding_type`), and Jina's current name for it."""
    from sentence_transformers.quantization import quantize_embeddings

    response = server.post("/v1/embeddings", {"model": "minilm", "input": TEXTS, field: precision})
    assert response.status_code == 200, response.text
    rows = [item["embedding"] for item in response.json()["data"]]
    assert all(isinstance(value, int) for row in rows for value in row)
    expected = quantize_embeddings(vectors, precision=precision)
    assert expected.shape == (3, 384 // 8)
    assert_packed_signs(np.array(rows), expected, vectors)


def test_binary_answers_decoded_as_llama_index_does_are_the_sign_bits(server, vectors):
    # The request and decoding code of LlamaIndex's JinaEmbedding, which hard-codes the API URL
    # of its own instance but not of this helper.
    from llama_index.embeddings.jinaai.base import _JinaAPICaller

    caller = _JinaAPICaller(model="minilm", base_url=f"{server.url}/v1", api_key="unused")
    for encoding in ("binary", "ubinary"):
        decoded = np.array(caller.get_embeddings(TEXTS, encoding_type=encoding))
        assert decoded.shape == vectors.shape, encoding
        assert_sign_bits(decoded, vectors)


def test_rerank_documents_as_text_objects(server, minilm_reranker):
    response = server.post(
        "/v1/rerank",
        {
            "model": "minilm-reranker",
            "query": QUERY,
            "documents": [{"text": text} for text in TEXTS],
            "top_n": 2,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    texts, scores = ranked(minilm_reranker, top_n=2)
    assert body["model"] == "minilm-reranker"
    assert [r["document"]["text"] for r in body["results"]] == texts
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx(scores, abs=ATOL)
    assert body["usage"]["total_tokens"] > 0


# ---------------------------------------------------------------------------------------------
# Hugging Face TEI


def test_chroma_tei_embedding_function_in_a_collection(server, vectors, query_vector):
    import chromadb
    from chromadb.utils.embedding_functions import HuggingFaceEmbeddingServer

    function = HuggingFaceEmbeddingServer(url=f"{server.url}/embed")
    assert_close(function(TEXTS), vectors)
    collection = chromadb.EphemeralClient().create_collection(
        "server-clients", embedding_function=function, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=["0", "1", "2"], documents=TEXTS)
    hits = collection.query(query_texts=[QUERY], n_results=3)
    cosine = vectors @ query_vector
    order = np.argsort(-cosine)
    assert hits["ids"][0] == [str(i) for i in order]
    assert hits["distances"][0] == pytest.approx((1 - cosine[order]).tolist(), abs=1e-4)


def test_tei_embed_a_string_and_unnormalized(server, minilm_embedder, query_vector):
    one = server.post("/embed", {"inputs": QUERY})
    assert one.status_code == 200, one.text
    assert_close(one.json(), query_vector[None])
    raw = server.post("/embed", {"inputs": TEXTS, "normalize": False, "truncate": True})
    assert raw.status_code == 200, raw.text
    assert_close(raw.json(), minilm_embedder.embed(TEXTS, normalize=False))


def test_tei_rerank_best_first_with_texts_and_raw_scores(server, minilm_reranker):
    response = server.post("/rerank", {"query": QUERY, "texts": TEXTS, "return_text": True})
    assert response.status_code == 200, response.text
    results = response.json()
    texts, scores = ranked(minilm_reranker)
    assert [r["text"] for r in results] == texts
    assert [r["score"] for r in results] == pytest.approx(scores, abs=ATOL)
    assert [TEXTS[r["index"]] for r in results] == texts

    raw = server.post("/rerank", {"query": QUERY, "texts": TEXTS, "raw_scores": True}).json()
    logits = minilm_reranker.score(QUERY, TEXTS, activation=None)
    assert "text" not in raw[0]
    assert [r["score"] for r in raw] == pytest.approx(logits[[r["index"] for r in raw]], abs=ATOL)


def test_tei_info_and_prometheus_metrics(server):
    from prometheus_client.parser import text_string_to_metric_families

    info = httpx.get(f"{server.url}/info", timeout=10)
    assert info.status_code == 200, info.text
    assert "model_id" in info.json()
    metrics = httpx.get(f"{server.url}/metrics", timeout=10)
    assert metrics.status_code == 200, metrics.text
    assert list(text_string_to_metric_families(metrics.text))


# ---------------------------------------------------------------------------------------------
# The API key


def test_a_wrong_key_is_the_clients_auth_error_and_the_right_key_works(keyed_server, vectors):
    import openai
    from langchain_openai import OpenAIEmbeddings

    with pytest.raises(openai.AuthenticationError):
        openai_client(keyed_server.url, "wrong-key").embeddings.create(model="minilm", input=TEXTS)
    wrong = OpenAIEmbeddings(
        base_url=f"{keyed_server.url}/v1",
        api_key="wrong-key",
        model="minilm",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.embed_documents(TEXTS)
    response = openai_client(keyed_server.url, KEY).embeddings.create(model="minilm", input=TEXTS)
    assert_close([item.embedding for item in response.data], vectors)


def test_the_key_reaches_jina_and_tei_clients(keyed_server, minilm_reranker, vectors):
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.jina import JinaRanker
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    def ranker(key: str) -> JinaRanker:
        return JinaRanker(
            model="minilm-reranker",
            api_key=Secret.from_token(key),
            base_url=f"{keyed_server.url}/v1/rerank",
        )

    documents = [Document(content=text) for text in TEXTS]
    with pytest.raises(RuntimeError, match="API key"):  # the component raises the `detail`
        ranker("wrong-key").run(query=QUERY, documents=documents)
    texts, scores = ranked(minilm_reranker)
    result = ranker(KEY).run(query=QUERY, documents=documents)
    assert [doc.content for doc in result["documents"]] == texts
    assert [doc.score for doc in result["documents"]] == pytest.approx(scores, abs=ATOL)

    tei = TextEmbeddingsInference(base_url=keyed_server.url, model_name="minilm", auth_token=KEY)
    assert_close(tei.get_text_embedding_batch(TEXTS), vectors)


def test_health_and_ready_need_no_key(keyed_server):
    for path in ("/health", "/ready"):
        response = httpx.get(f"{keyed_server.url}{path}", timeout=10)
        assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/models", None),
        ("POST", "/v1/embeddings", {"input": "x"}),
        ("POST", "/v1/rerank", {"query": "q", "documents": ["d"]}),
        ("POST", "/embed", {"inputs": "x"}),
        ("POST", "/rerank", {"query": "q", "texts": ["d"]}),
        ("GET", "/info", None),
        ("GET", "/metrics", None),
    ],
)
def test_every_route_but_health_and_ready_needs_the_key(keyed_server, method, path, body):
    url = f"{keyed_server.url}{path}"

    def send(headers: dict[str, str]) -> httpx.Response:
        return httpx.request(method, url, json=body, headers=headers, timeout=30)

    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": KEY}):
        refused = send(headers)
        assert refused.status_code == 401, (headers, refused.text)
    right = send({"Authorization": f"Bearer {KEY}"})
    assert right.status_code == 200, right.text
