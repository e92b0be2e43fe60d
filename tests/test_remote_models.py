"""The adapters over a real `jinarag serve` server (`base_url=`): the same vectors and scores as
the in-process core, in real framework flows, and the errors of a server that is absent,
refuses a request, or is given together with a local model."""

from __future__ import annotations

import copy

import chromadb
import numpy as np
import pytest
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from serving_helpers import Server, free_port

from jinarag.chroma import JinaEmbeddingFunction
from jinarag.errors import InputError, RemoteError
from jinarag.haystack import JinaDocumentEmbedder, JinaRanker, JinaTextEmbedder
from jinarag.inference.remote import RemoteEmbedder, RemoteReranker
from jinarag.langchain import JinaEmbeddings, JinaReranker
from jinarag.llama_index import JinaEmbedding, JinaLateChunker, JinaRerank

pytestmark = pytest.mark.slow  # `jinarag serve` processes

TEXTS = [
    "Lift grows with the angle of attack until the wing stalls.",
    "A swept wing delays the shock wave at high subsonic speed.",
    "Heat flows through a slab in proportion to the temperature gradient.",
    "Flutter couples the bending and the torsion of a wing.",
    "The boundary layer thickens along a flat plate.",
]
QUERY = "why does a wing flutter?"
CHUNKS = ["The wing was tested in the tunnel.", "It fluttered at high speed.", "Then it broke."]
EXACT = 1e-5
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def url(minilm_server) -> str:
    return minilm_server.url


@pytest.fixture(scope="module")
def keyed_url(minilm_dir, tmp_path_factory):
    """A server that wants `Authorization: Bearer KEY`."""
    served = Server(
        ["--model", str(minilm_dir), "--api-key", KEY], tmp_path_factory.mktemp("keyed") / "log"
    )
    yield served.url
    served.stop()


def assert_close(actual, expected) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= EXACT


# --------------------------------------------------------------------------- the core clients


def test_remote_embedder_equals_the_core(url, minilm_embedder):
    # A trailing "/v1/" is the same server; batch_size=2 sends three requests for five texts.
    remote = RemoteEmbedder(url + "/v1/", batch_size=2)
    assert (remote.base_url, remote.dim, remote.max_length) == (url, minilm_embedder.dim, 256)
    vectors = remote.embed(TEXTS)
    assert vectors.dtype == remote.embed_query(QUERY).dtype == np.float32
    assert_close(vectors, minilm_embedder.embed(TEXTS))
    raw = remote.embed_documents(TEXTS, normalize=False)
    assert_close(raw, minilm_embedder.embed_documents(TEXTS, normalize=False))
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert_close(remote.embed_query(QUERY), minilm_embedder.embed_query(QUERY))
    assert remote.embed([]).shape == (0, minilm_embedder.dim)
    # A copy opens its own connections and gives the same vectors.
    assert_close(
        copy.deepcopy(remote).embed_queries([QUERY]), minilm_embedder.embed_queries([QUERY])
    )


def test_late_chunks_over_the_server_equal_the_core(url, minilm_embedder):
    remote = RemoteEmbedder(url)
    assert_close(remote.embed_late_chunks(CHUNKS), minilm_embedder.embed_late_chunks(CHUNKS))
    documents = [CHUNKS, TEXTS[:2]]
    for got, want in zip(
        remote.embed_late_chunks_many(documents),
        minilm_embedder.embed_late_chunks_many(documents),
        strict=True,
    ):
        assert_close(got, want)
    with pytest.raises(InputError, match="overlap"):
        remote.embed_late_chunks(CHUNKS, overlap=8)


def test_remote_reranker_equals_the_core(url, minilm_reranker):
    remote = RemoteReranker(url, batch_size=2)
    assert_close(remote.score(QUERY, TEXTS), minilm_reranker.score(QUERY, TEXTS))
    # Two queries interleaved: one request group per query, scores back in pair order.
    pairs = [(QUERY if i % 2 else "heat in a slab", text) for i, text in enumerate(TEXTS)]
    assert_close(remote.score_pairs(pairs), minilm_reranker.score_pairs(pairs))
    ranked = remote.rank(QUERY, TEXTS, top_n=3)
    expected = minilm_reranker.rank(QUERY, TEXTS, top_n=3)
    assert [(r.index, r.text) for r in ranked] == [(r.index, r.text) for r in expected]
    assert_close([r.score for r in ranked], [r.score for r in expected])
    with pytest.raises(InputError, match="activation=None"):
        remote.score(QUERY, TEXTS, activation=None)


def test_methods_refuse_unknown_keywords_like_the_core(url, minilm_embedder):
    named = r"\.embed got unknown option colour; the accepted options are: texts, batch_size"
    with pytest.raises(InputError, match=named):
        minilm_embedder.embed(TEXTS, colour="red")
    with pytest.raises(InputError, match=named):
        RemoteEmbedder(url).embed(TEXTS, colour="red")


def test_pooled_windows_are_refused_by_a_remote_embedder(url):
    with pytest.raises(InputError, match="overflow='pool' cannot be sent to a jinarag server"):
        RemoteEmbedder(url).embed(TEXTS, truncate=False, overflow="pool")


# --------------------------------------------------------------------------- LangChain


def test_langchain_retriever_and_reranker_over_the_server(url, minilm_embedder, minilm_reranker):
    docs = [Document(page_content=text, id=str(i)) for i, text in enumerate(TEXTS)]
    remote, local = JinaEmbeddings(base_url=url), JinaEmbeddings(embedder=minilm_embedder)
    assert isinstance(remote.embedder, RemoteEmbedder)
    assert_close(remote.embed_documents(TEXTS), local.embed_documents(TEXTS))
    assert_close(remote.embed_query(QUERY), local.embed_query(QUERY))

    store = InMemoryVectorStore(embedding=remote)
    store.add_documents(docs)
    found = store.as_retriever(search_kwargs={"k": 3}).invoke(QUERY)
    scores = minilm_embedder.embed(TEXTS) @ minilm_embedder.embed_query(QUERY)
    assert [d.id for d in found] == [str(i) for i in np.argsort(-scores)[:3]]

    reranked = JinaReranker(base_url=url, top_n=2).compress_documents(found, QUERY)
    expected = JinaReranker(reranker=minilm_reranker, top_n=2).compress_documents(found, QUERY)
    assert [d.id for d in reranked] == [d.id for d in expected]
    assert_close(
        [d.metadata["relevance_score"] for d in reranked],
        [d.metadata["relevance_score"] for d in expected],
    )


def test_langchain_late_chunking_over_the_server(url, minilm_embedder):
    remote, local = JinaEmbeddings(base_url=url), JinaEmbeddings(embedder=minilm_embedder)
    assert_close(remote.embed_late_chunks(CHUNKS), local.embed_late_chunks(CHUNKS))
    source = [Document(page_content=" ".join(CHUNKS), id="wing")]
    chunks, vectors = remote.late_chunk_documents(source, chunk_by="sentences")
    want_chunks, want_vectors = local.late_chunk_documents(source, chunk_by="sentences")
    assert [c.page_content for c in chunks] == CHUNKS == [c.page_content for c in want_chunks]
    assert_close(vectors, want_vectors)
    with pytest.raises(InputError, match="sentences"):
        remote.late_chunk_documents(source)  # by tokens: the tokenizer stays on the server


# --------------------------------------------------------------------------- LlamaIndex


def test_llama_index_retrieval_and_rerank_over_the_server(url, minilm_embedder, minilm_reranker):
    embed_model = JinaEmbedding(base_url=url, embed_batch_size=2)
    assert embed_model.model_name == RemoteEmbedder(url).name
    assert_close(
        embed_model.get_text_embedding_batch(TEXTS), minilm_embedder.embed_documents(TEXTS)
    )
    assert_close(embed_model.get_query_embedding(QUERY), minilm_embedder.embed_query(QUERY))

    nodes = [TextNode(id_=str(i), text=text) for i, text in enumerate(TEXTS)]
    retrieved = (
        VectorStoreIndex(nodes, embed_model=embed_model)
        .as_retriever(similarity_top_k=4)
        .retrieve(QUERY)
    )
    reranked = JinaRerank(base_url=url, top_n=2).postprocess_nodes(retrieved, query_str=QUERY)
    expected = JinaRerank(reranker=minilm_reranker, top_n=2).postprocess_nodes(
        retrieved, query_str=QUERY
    )
    assert [n.node.node_id for n in reranked] == [n.node.node_id for n in expected]
    assert_close([n.score for n in reranked], [n.score for n in expected])
    assert JinaRerank(base_url=url).to_dict()["base_url"] == url


def test_llama_index_late_chunker_takes_no_server(url):
    with pytest.raises(InputError, match="JinaEmbedding\\(base_url=...\\).embedder"):
        JinaLateChunker(base_url=url)


# --------------------------------------------------------------------------- Haystack


def test_haystack_pipelines_over_the_server(url, minilm_embedder, minilm_reranker):
    store = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component("embedder", JinaDocumentEmbedder(base_url=url, progress_bar=False))
    indexing.add_component("writer", DocumentWriter(store))
    indexing.connect("embedder", "writer")
    docs = [HaystackDocument(id=str(i), content=text) for i, text in enumerate(TEXTS)]
    indexing.run({"embedder": {"documents": docs}})
    stored = sorted(store.filter_documents(), key=lambda d: d.id)
    assert_close([d.embedding for d in stored], minilm_embedder.embed_documents(TEXTS))

    query = Pipeline()
    query.add_component("embedder", JinaTextEmbedder(base_url=url))
    query.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=4))
    query.add_component("ranker", JinaRanker(base_url=url, top_k=2))
    query.connect("embedder.embedding", "retriever.query_embedding")
    query.connect("retriever.documents", "ranker.documents")
    found = query.run({"embedder": {"text": QUERY}, "ranker": {"query": QUERY}})
    # The in-process reference: the 4 nearest texts, reranked.
    nearest = np.argsort(-(minilm_embedder.embed(TEXTS) @ minilm_embedder.embed_query(QUERY)))
    expected = minilm_reranker.rank(QUERY, [TEXTS[i] for i in nearest[:4]], top_n=2)
    ranked = found["ranker"]["documents"]
    assert [d.content for d in ranked] == [r.text for r in expected]
    assert_close([d.score for d in ranked], [r.score for r in expected])
    with pytest.raises(InputError, match="scale_score=False"):
        JinaRanker(base_url=url, scale_score=False)
    with pytest.raises(InputError, match="activation=None"):  # per run, from the client
        query.get_component("ranker").run(query=QUERY, documents=ranked, scale_score=False)


def test_haystack_late_chunking_over_the_server(url, minilm_embedder):
    docs = [
        HaystackDocument(content=chunk, meta={"source_id": "wing", "split_id": i})
        for i, chunk in enumerate(CHUNKS)
    ]
    embedder = JinaDocumentEmbedder(base_url=url, late_chunking=True, progress_bar=False)
    embedded = embedder.run(docs)["documents"]
    assert_close([d.embedding for d in embedded], minilm_embedder.embed_late_chunks(CHUNKS))


def test_haystack_serialisation_keeps_the_url_and_never_a_key(url, monkeypatch):
    monkeypatch.setenv("JINARAG_API_KEY", "from-the-env")
    for component_class in (JinaTextEmbedder, JinaDocumentEmbedder, JinaRanker):
        component = component_class(base_url=url)
        data = component.to_dict()
        parameters = data["init_parameters"]
        assert parameters["base_url"] == url and parameters["model"] is None
        assert parameters["api_key"] == {
            "type": "env_var",
            "env_vars": ["JINARAG_API_KEY"],
            "strict": False,
        }
        assert "from-the-env" not in str(data)
        rebuilt = component_class.from_dict(data)
        assert rebuilt.to_dict() == data
        model = rebuilt.embedder if hasattr(rebuilt, "embedder") else rebuilt.reranker
        assert isinstance(model, (RemoteEmbedder, RemoteReranker)) and model.base_url == url
    with pytest.raises(ValueError, match="token"):  # Haystack never writes a token
        JinaTextEmbedder(base_url=url, api_key=Secret.from_token("k")).to_dict()


def test_haystack_refuses_a_server_with_local_options(url):
    with pytest.raises(InputError, match="base_url=.*device='cpu'"):
        JinaTextEmbedder(base_url=url, device="cpu")
    with pytest.raises(InputError, match="base_url=.*max_length=128"):
        JinaRanker(base_url=url, max_length=128)
    with pytest.raises(InputError, match="base_url=.*model='small'"):
        JinaDocumentEmbedder(base_url=url, model="small")


# --------------------------------------------------------------------------- Chroma


def test_chroma_collection_over_the_server(url, tmp_path, minilm_embedder):
    function = JinaEmbeddingFunction(base_url=url, api_key="s3cret-key")
    config = function.get_config()
    assert config["base_url"] == url and config["model_name"] is None
    assert "s3cret-key" not in str(config)
    assert_close(np.stack(function(TEXTS)), minilm_embedder.embed_documents(TEXTS))
    ids = [str(i) for i in range(len(TEXTS))]
    with chromadb.PersistentClient(path=str(tmp_path)) as client:
        client.create_collection("docs", embedding_function=function).add(ids=ids, documents=TEXTS)
    scores = minilm_embedder.embed(TEXTS) @ minilm_embedder.embed_query(QUERY)
    with chromadb.PersistentClient(path=str(tmp_path)) as client:
        reopened = client.get_collection("docs")  # the function rebuilt from its config
        found = reopened.query(query_texts=[QUERY], n_results=2)["ids"][0]
    assert found == [ids[i] for i in np.argsort(-scores)[:2]]
    rebuilt = JinaEmbeddingFunction.build_from_config(config)
    assert_close(np.stack(rebuilt.embed_query([QUERY])), minilm_embedder.embed_queries([QUERY]))


# --------------------------------------------------------------------------- API key


def test_the_api_key_is_sent_from_the_argument_or_the_env(keyed_url, monkeypatch, minilm_embedder):
    monkeypatch.delenv("JINARAG_API_KEY", raising=False)
    with pytest.raises(InputError, match="HTTP 401.*pass api_key=, or set JINARAG_API_KEY"):
        JinaEmbeddings(base_url=keyed_url).embed_query(QUERY)
    with pytest.raises(InputError, match="HTTP 401"):
        JinaEmbeddings(base_url=keyed_url, api_key="wrong").embed_query(QUERY)
    expected = minilm_embedder.embed_query(QUERY)
    embeddings = JinaEmbeddings(base_url=keyed_url, api_key=KEY)
    assert KEY not in repr(embeddings) and KEY not in repr(embeddings.embedder)
    assert_close(embeddings.embed_query(QUERY), expected)
    assert_close(
        JinaEmbedding(base_url=keyed_url, api_key=KEY).get_query_embedding(QUERY), expected
    )
    monkeypatch.setenv("JINARAG_API_KEY", KEY)
    assert_close(RemoteEmbedder(keyed_url).embed_query(QUERY), expected)
    # Haystack's Secret (the env var by default) and Chroma's rebuilt function read it too.
    assert_close(JinaTextEmbedder(base_url=keyed_url).run(QUERY)["embedding"], expected)
    function = JinaEmbeddingFunction(base_url=keyed_url)
    assert KEY not in str(function.get_config())
    rebuilt = JinaEmbeddingFunction.build_from_config(function.get_config())
    assert_close(rebuilt.embed_query([QUERY])[0], expected)


# --------------------------------------------------------------------------- errors


def test_no_server_at_base_url_is_a_remote_error_naming_it():
    dead = f"http://127.0.0.1:{free_port()}"
    embeddings = JinaEmbeddings(base_url=dead)  # nothing is sent until it is used
    with pytest.raises(RemoteError, match="jinarag serve") as info:
        embeddings.embed_query(QUERY)
    assert dead in str(info.value)
    with pytest.raises(RemoteError, match=dead):
        JinaRanker(base_url=dead).run(query=QUERY, documents=[HaystackDocument(content="x")])


def test_base_url_with_a_local_model_is_an_input_error(url, minilm_embedder):
    with pytest.raises(InputError, match="base_url=.*model='small'"):
        JinaEmbeddings(model="small", base_url=url)
    with pytest.raises(InputError, match="base_url=.*embedder="):
        JinaEmbedding(embedder=minilm_embedder, base_url=url)
    with pytest.raises(InputError, match="base_url=.*device='cpu'"):
        JinaReranker(base_url=url, device="cpu")
    with pytest.raises(InputError, match="base_url=.*model_name='small'"):
        JinaEmbeddingFunction("small", base_url=url)
    with pytest.raises(InputError, match="api_key=.*base_url"):
        JinaRerank("turbo", api_key="k")
    with pytest.raises(InputError, match="not the URL of a jinarag server"):
        RemoteEmbedder("127.0.0.1:8080")


def test_a_refusal_by_the_server_is_an_input_error_with_its_detail(url):
    remote = RemoteEmbedder(url)
    long_text = "wing " * 600  # more than the served max_length of 256 tokens
    with pytest.raises(InputError, match="truncate") as info:
        remote.embed([long_text], truncate=False)
    assert f"{url}/v1/embeddings answered HTTP 4" in str(info.value)
    with pytest.raises(InputError, match="no embedding model named 'nope'"):
        RemoteEmbedder(url, model="nope").embed([])
