"""Each adapter speaks its framework's own names and filters: every alias, mapping and filter
translation gives what the core gives for our own names (the same ids, the same vectors), and
a bad value is an InputError naming it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

import jinarag
from jinarag.chroma import JinaEmbeddingFunction
from jinarag.errors import InputError
from jinarag.haystack import JinaHybridRetriever as HSRetriever
from jinarag.haystack.filters import to_where as haystack_where
from jinarag.langchain import JinaEmbeddings, JinaHybridRetriever, JinaReranker
from jinarag.llama_index import JinaHybridRetriever as LIRetriever
from jinarag.llama_index import JinaRerank
from jinarag.llama_index.filters import to_where as llama_where

TEXTS = [
    "The lift of a wing in a propeller slipstream grows with the slipstream velocity.",
    "Heat transfer through a laminar boundary layer at high Mach numbers.",
    "A slipstream behind a propeller changes the lift distribution along the span.",
    "Buckling of thin cylindrical shells under axial compression.",
    "Wing lift at low speed, measured in a wind tunnel.",
    "Lift and drag of a wing without a number.",
]
IDS = ["a", "b", "c", "d", "e", "f"]
# The last record has no "n": negated comparisons must say what happens to it.
METADATAS = [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"topic": "lift"}]
QUERY = "lift of a wing behind a propeller"
SERVER = "http://127.0.0.1:9"  # nothing is sent before a first call


@pytest.fixture(scope="module")
def index(minilm_embedder):
    index = jinarag.HybridIndex(embedder=minilm_embedder)
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    yield index
    index.close()


def search_ids(index, where, k=6):
    return [hit.id for hit in index.search(QUERY, k=k, mode="hybrid", where=where)]


# --- LangChain: HuggingFaceEmbeddings' names ------------------------------------------------


def test_langchain_model_name_is_model(minilm_dir, minilm_embedder):
    embeddings = JinaEmbeddings(model_name=str(minilm_dir), max_length=256)
    assert embeddings.model == str(minilm_dir)
    np.testing.assert_allclose(
        embeddings.embed_query(QUERY), minilm_embedder.embed_query(QUERY), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(InputError, match="model_name=.*model="):
        JinaEmbeddings("small", model_name=str(minilm_dir))


def test_langchain_encode_kwargs_map_onto_fields(minilm_embedder):
    embeddings = JinaEmbeddings(
        embedder=minilm_embedder,
        encode_kwargs={"normalize_embeddings": False, "batch_size": 3},
        show_progress=True,
    )
    assert (embeddings.normalize, embeddings.batch_size, embeddings.show_progress) == (
        False,
        3,
        True,
    )
    expected = minilm_embedder.embed_documents(TEXTS, normalize=False)
    np.testing.assert_allclose(embeddings.embed_documents(TEXTS), expected, rtol=1e-5, atol=1e-6)
    # The same value under both names is fine; two different ones are refused.
    JinaEmbeddings(embedder=minilm_embedder, batch_size=3, encode_kwargs={"batch_size": 3})


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"encode_kwargs": {"convert_to_numpy": True}}, "convert_to_numpy"),
        ({"encode_kwargs": {"batch_size": 4}, "batch_size": 8}, "batch_size"),
        ({"encode_kwargs": {"normalize_embeddings": "yes"}}, "normalize"),
        ({"encode_kwargs": [("batch_size", 4)]}, "encode_kwargs"),
        ({"show_progress": "yes"}, "show_progress"),
    ],
)
def test_langchain_bad_encode_kwargs_are_named(minilm_embedder, kwargs, named):
    with pytest.raises(InputError, match=named):
        JinaEmbeddings(embedder=minilm_embedder, **kwargs)


def test_langchain_api_key_from_env_with_base_url_only(monkeypatch, minilm_embedder):
    monkeypatch.setenv("JINARAG_API_KEY", "key-from-env")
    assert JinaEmbeddings(base_url=SERVER).api_key.get_secret_value() == "key-from-env"
    assert JinaReranker(base_url=SERVER).api_key.get_secret_value() == "key-from-env"
    given = JinaEmbeddings(base_url=SERVER, api_key="given")
    assert given.api_key.get_secret_value() == "given"
    # Without a server no key is used, so none is read (and none is refused).
    assert JinaEmbeddings(embedder=minilm_embedder).api_key is None


# --- LangChain: VectorStoreRetriever's search_kwargs ----------------------------------------


def test_langchain_search_kwargs_map_onto_k_and_where(index):
    where = {"n": {"$gte": 2}}
    retriever = JinaHybridRetriever(index, search_kwargs={"k": 2, "filter": where})
    assert (retriever.k, retriever.where) == (2, where)
    assert [d.id for d in retriever.invoke(QUERY)] == search_ids(index, where, k=2)
    same = JinaHybridRetriever(index, search_kwargs={"k": 2, "where": where, "mode": "bm25"})
    assert same.mode == "bm25"
    # `filter` per call, as VectorStoreRetriever users pass it to invoke.
    plain = JinaHybridRetriever(index, k=6)
    assert [d.id for d in plain.invoke(QUERY, filter=where)] == search_ids(index, where)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"search_kwargs": {"fetch_k": 20}}, "fetch_k"),
        ({"search_kwargs": {"filter": {"n": 1}, "where": {"n": 2}}}, "filter"),
        ({"search_kwargs": {"k": 2}, "k": 3}, "k"),
        ({"search_kwargs": {"k": 0}}, "k"),
        ({"search_kwargs": "k=2"}, "search_kwargs"),
    ],
)
def test_langchain_bad_search_kwargs_are_named(index, kwargs, named):
    with pytest.raises(InputError, match=named):
        JinaHybridRetriever(index, **kwargs)


def test_langchain_filter_and_where_per_call_must_agree(index):
    with pytest.raises(InputError, match="filter=.*where="):
        JinaHybridRetriever(index).invoke(QUERY, filter={"n": 1}, where={"n": 2})


# --- Chroma: SentenceTransformerEmbeddingFunction's normalize_embeddings --------------------


def test_chroma_normalize_embeddings_is_normalize(minilm_embedder):
    function = JinaEmbeddingFunction(embedder=minilm_embedder, normalize_embeddings=False)
    assert function.get_config()["normalize"] is False
    expected = minilm_embedder.embed_documents(TEXTS[:2], normalize=False)
    np.testing.assert_allclose(np.array(function(TEXTS[:2])), expected, rtol=1e-5, atol=1e-6)
    config = {**function.get_config(), "normalize_embeddings": False}
    del config["normalize"]
    JinaEmbeddingFunction.validate_config(config)
    rebuilt = JinaEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config()["normalize"] is False
    assert JinaEmbeddingFunction(embedder=minilm_embedder).get_config()["normalize"] is True


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"normalize_embeddings": "no"}, "normalize_embeddings"),
        ({"normalize_embeddings": False, "normalize": True}, "normalize_embeddings"),
    ],
)
def test_chroma_bad_normalize_embeddings_is_named(minilm_embedder, kwargs, named):
    with pytest.raises(InputError, match=named):
        JinaEmbeddingFunction(embedder=minilm_embedder, **kwargs)
    with pytest.raises(InputError, match=named):
        JinaEmbeddingFunction.validate_config({"model_name": "small", **kwargs})


# --- LlamaIndex: MetadataFilters and top_n --------------------------------------------------


def test_llama_index_filters_as_where(index):
    gte = MetadataFilters(filters=[MetadataFilter(key="n", value=2, operator=FilterOperator.GTE)])
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="n", value=[1, 2, 3], operator=FilterOperator.IN),
            MetadataFilters(
                filters=[
                    MetadataFilter(key="n", value=2, operator=FilterOperator.NE),
                    MetadataFilter(key="n", value=1, operator=FilterOperator.LTE),
                ],
                condition=FilterCondition.OR,
            ),
        ]
    )
    cases = [
        (gte, {"n": {"$gte": 2}}),
        (
            nested,
            {"$and": [{"n": {"$in": [1, 2, 3]}}, {"$or": [{"n": {"$ne": 2}}, {"n": {"$lte": 1}}]}]},
        ),
        (
            MetadataFilters(filters=[MetadataFilter(key="topic", value="lift")]),
            {"topic": {"$eq": "lift"}},
        ),
        (MetadataFilters(filters=[]), None),
    ]
    for filters, where in cases:
        assert llama_where(filters) == where
        retriever = LIRetriever(index, similarity_top_k=6, filters=filters)
        assert [n.node.node_id for n in retriever.retrieve(QUERY)] == search_ids(index, where)
    both = LIRetriever(index, similarity_top_k=6, where={"n": {"$lt": 4}}, filters=gte)
    expected = search_ids(index, {"$and": [{"n": {"$lt": 4}}, {"n": {"$gte": 2}}]})
    assert sorted(expected) == ["c", "d"]
    assert [n.node.node_id for n in both.retrieve(QUERY)] == expected


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        (
            MetadataFilters(filters=[MetadataFilter(key="t", value="x", operator="contains")]),
            "contains",
        ),
        (
            MetadataFilters(filters=[MetadataFilter(key="t", value="x", operator="text_match")]),
            "text_match",
        ),
        (MetadataFilters(filters=[MetadataFilter(key="n", value=1)], condition="not"), "not"),
        ({"n": 1}, "MetadataFilters"),
    ],
)
def test_llama_index_unsupported_filters_are_named(index, filters, named):
    with pytest.raises(InputError, match=named):
        LIRetriever(index, filters=filters)


def test_llama_index_rerank_top_n_default_is_llama_index_s():
    from llama_index.core.postprocessor import SentenceTransformerRerank

    theirs = inspect.signature(SentenceTransformerRerank.__init__).parameters["top_n"].default
    assert JinaRerank.model_fields["top_n"].default == theirs == 2
    assert inspect.signature(JinaRerank.__init__).parameters["top_n"].default == theirs


# --- Haystack: its filter syntax ------------------------------------------------------------


def comparison(field, operator, value):
    return {"field": field, "operator": operator, "value": value}


HAYSTACK_CASES = [
    (comparison("meta.n", "==", 1), {"n": {"$eq": 1}}),
    (comparison("meta.n", ">", 1), {"n": {"$gt": 1}}),
    (comparison("n", "not in", [1, 2]), {"n": {"$nin": [1, 2]}}),
    (
        {
            "operator": "AND",
            "conditions": [comparison("meta.n", ">=", 1), comparison("meta.n", "<", 4)],
        },
        {"$and": [{"n": {"$gte": 1}}, {"n": {"$lt": 4}}]},
    ),
    (
        {
            "operator": "OR",
            "conditions": [comparison("meta.n", "<=", 0), comparison("meta.n", "!=", 3)],
        },
        {"$or": [{"n": {"$lte": 0}}, {"n": {"$ne": 3}}]},
    ),
    (
        {"operator": "AND", "conditions": [comparison("meta.n", "in", [0, 4])]},
        {"n": {"$in": [0, 4]}},
    ),
    # NOT (not all of them), pushed down by De Morgan.
    (
        {
            "operator": "NOT",
            "conditions": [comparison("meta.n", "==", 1), comparison("meta.n", ">", 2)],
        },
        {"$or": [{"n": {"$ne": 1}}, {"n": {"$lte": 2}}]},
    ),
    (
        {
            "operator": "NOT",
            "conditions": [
                {
                    "operator": "OR",
                    "conditions": [
                        comparison("meta.n", "in", [1, 2]),
                        comparison("meta.n", ">=", 4),
                    ],
                }
            ],
        },
        {"$and": [{"n": {"$nin": [1, 2]}}, {"n": {"$lt": 4}}]},
    ),
    ({"n": {"$gte": 2}}, {"n": {"$gte": 2}}),  # a Chroma where, as it is
]


@pytest.mark.parametrize(("filters", "where"), HAYSTACK_CASES)
def test_haystack_filters_as_where(index, filters, where):
    assert haystack_where(filters) == where
    retriever = HSRetriever(model="unused", top_k=6, filters=filters)
    retriever.index = index  # the fixture's index: nothing to load
    found = [doc.id for doc in retriever.run(QUERY)["documents"]]
    assert found == search_ids(index, where)


def test_haystack_not_keeps_records_without_the_field_for_equality(index):
    retriever = HSRetriever(model="unused", top_k=6)
    retriever.index = index
    negated = {"operator": "NOT", "conditions": [comparison("meta.n", "==", 1)]}
    found = {doc.id for doc in retriever.run(QUERY, filters=negated)["documents"]}
    assert found == {"a", "c", "d", "e", "f"}  # "f" has no n, as in Haystack's own stores


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        (comparison("content", "==", "lift"), "'content'"),
        (comparison("id", "in", ["a"]), "'id'"),
        (comparison("meta.n", "~=", 1), "'~='"),
        (comparison("meta.n", "==", None), "value"),
        (comparison("meta.n", "in", 1), "list"),
        ({"operator": "XOR", "conditions": [comparison("meta.n", "==", 1)]}, "'XOR'"),
        ({"operator": "AND", "conditions": []}, "conditions"),
        ({"operator": "AND", "conditions": [comparison("meta.n", ">", 1), "n > 1"]}, r"\[1\]"),
        ("n > 1", "filters"),
    ],
)
def test_haystack_bad_filters_are_named(filters, named):
    with pytest.raises(InputError, match=named):
        HSRetriever(model="unused", filters=filters)
