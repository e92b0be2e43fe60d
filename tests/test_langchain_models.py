"""jinarag.langchain's embeddings and reranker inside LangChain, and its import guard."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_helpers import cranfield_records, distinctive_sentence

import jinarag
from jinarag.langchain import JinaEmbeddings, JinaReranker

QUERY = "lift increase of a wing in a propeller slipstream"


@pytest.fixture(scope="module")
def records(cranfield_dir):
    return cranfield_records(cranfield_dir, 40)


@pytest.fixture(scope="module")
def prefixed_embedder(minilm_dir):
    """MiniLM with a query prefix, so the query side and the document side differ."""
    return jinarag.Embedder.from_pretrained(minilm_dir, max_length=256, query_prefix="query: ")


# --- embeddings ---------------------------------------------------------------------------


def test_embeddings_match_the_core_sides(prefixed_embedder):
    embeddings = JinaEmbeddings(embedder=prefixed_embedder)
    texts = ["a wing in a slipstream", "heat conduction in slabs"]

    docs = embeddings.embed_documents(texts)
    query = embeddings.embed_query(texts[0])

    np.testing.assert_allclose(docs, prefixed_embedder.embed_documents(texts), atol=1e-6)
    np.testing.assert_allclose(query, prefixed_embedder.embed_query(texts[0]), atol=1e-6)
    # The query went through the query side, not the document side.
    assert not np.allclose(query, docs[0], atol=1e-3)


def test_async_embeddings_equal_sync(prefixed_embedder):
    embeddings = JinaEmbeddings(embedder=prefixed_embedder)
    texts = ["transonic flutter of a wing", "boundary layer transition"]

    async def both():
        return await embeddings.aembed_documents(texts), await embeddings.aembed_query(texts[1])

    docs, query = asyncio.run(both())
    np.testing.assert_allclose(docs, embeddings.embed_documents(texts), atol=1e-6)
    np.testing.assert_allclose(query, embeddings.embed_query(texts[1]), atol=1e-6)


def test_embeddings_loading_options_reach_the_embedder(minilm_dir):
    embeddings = JinaEmbeddings(str(minilm_dir), max_length=64)
    assert embeddings.embedder.max_length == 64
    assert len(embeddings.embed_query("a wing")) == embeddings.embedder.dim


def test_embeddings_need_exactly_one_source(minilm_embedder, minilm_dir):
    with pytest.raises(jinarag.InputError, match="model="):
        JinaEmbeddings()
    with pytest.raises(jinarag.InputError, match="not both"):
        JinaEmbeddings(model=str(minilm_dir), embedder=minilm_embedder)


def test_embeddings_missing_model_raises_core_error(tmp_path):
    with pytest.raises(jinarag.ModelNotFoundError):
        JinaEmbeddings(model=str(tmp_path / "no-such-model"), local_files_only=True)


# --- reranker -----------------------------------------------------------------------------


def _docs(records, n):
    return [
        Document(page_content=r["title"], metadata={"source": "cranfield", "n": i}, id=r["_id"])
        for i, r in enumerate(records[:n])
    ]


def test_reranker_orders_like_the_core_and_keeps_ids_and_metadata(minilm_reranker, records):
    docs = _docs(records, 12)
    before = copy.deepcopy(docs)
    reranker = JinaReranker(reranker=minilm_reranker, top_n=5)

    out = reranker.compress_documents(docs, QUERY)

    expected = minilm_reranker.rank(QUERY, [d.page_content for d in docs], top_n=5)
    assert [d.id for d in out] == [docs[r.index].id for r in expected]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [r.score for r in expected], abs=1e-6
    )
    for doc, r in zip(out, expected, strict=True):
        assert doc.page_content == docs[r.index].page_content
        assert doc.metadata["source"] == "cranfield"
        assert doc.metadata["n"] == r.index
    # Inputs untouched: same values, and the outputs are new objects.
    assert docs == before
    assert all("relevance_score" not in d.metadata for d in docs)
    assert not any(o is d or o.metadata is d.metadata for o in out for d in docs)


def test_reranker_top_n_none_keeps_all_and_threshold_filters(minilm_reranker, records):
    docs = _docs(records, 10)
    scores = minilm_reranker.score(QUERY, [d.page_content for d in docs])
    threshold = float(np.median(scores))

    everything = JinaReranker(reranker=minilm_reranker, top_n=None).compress_documents(docs, QUERY)
    kept = JinaReranker(
        reranker=minilm_reranker, top_n=None, score_threshold=threshold
    ).compress_documents(docs, QUERY)

    assert len(everything) == len(docs)
    got = [d.metadata["relevance_score"] for d in everything]
    assert got == sorted(got, reverse=True)
    assert {d.id for d in kept} == {
        d.id for d, s in zip(docs, scores, strict=True) if s >= threshold
    }
    assert 0 < len(kept) < len(docs)


def test_reranker_empty_input(minilm_reranker):
    assert list(JinaReranker(reranker=minilm_reranker).compress_documents([], QUERY)) == []


def test_cross_encoder_scores_pairs_per_query(minilm_reranker, records):
    texts = [r["title"] for r in records[:6]]
    other = "heat conduction in composite slabs"
    pairs = [(QUERY, t) for t in texts[:3]] + [(other, t) for t in texts[3:]] + [(QUERY, texts[5])]

    scores = JinaReranker(reranker=minilm_reranker).score(pairs)

    expected = [
        *minilm_reranker.score(QUERY, texts[:3]),
        *minilm_reranker.score(other, texts[3:]),
        *minilm_reranker.score(QUERY, texts[5:6]),
    ]
    assert all(isinstance(s, float) for s in scores)
    assert scores == pytest.approx(expected, abs=1e-6)


# --- langchain-chroma ----------------------------------------------------------------------


@pytest.mark.slow
def test_langchain_chroma_vector_store_with_our_embeddings(tmp_path, minilm_embedder, records):
    from langchain_chroma import Chroma

    subset = records[:20]
    question, expected_id = distinctive_sentence(subset, 11)
    embeddings = JinaEmbeddings(embedder=minilm_embedder)
    store = Chroma(
        collection_name="cranfield-lc",
        embedding_function=embeddings,
        persist_directory=str(tmp_path),
    )
    texts = [r["text"] for r in subset]
    ids = [r["_id"] for r in subset]

    store.add_texts(texts, metadatas=[{"title": r["title"]} for r in subset], ids=ids)
    found = store.similarity_search(question, k=3)

    assert found[0].id == expected_id
    assert found[0].metadata["title"] == subset[11]["title"]
    # Chroma stored the vectors our embeddings made (document side).
    stored = store.get(ids=ids[:3], include=["embeddings"])
    order = [stored["ids"].index(i) for i in ids[:3]]
    np.testing.assert_allclose(
        np.asarray(stored["embeddings"])[order],
        minilm_embedder.embed_documents(texts[:3]),
        atol=1e-5,
    )


# --- loading options ----------------------------------------------------------------------

# Every loading option away from its default (a local directory ignores the revision, but it
# is still checked and passed on).
EVERY_OPTION = {
    "device": "cpu",
    "dtype": "bfloat16",
    "max_length": 32,
    "revision": "main",
    "local_files_only": True,
    "max_batch_tokens": 256,
    "attention": "eager",
    "num_threads": 1,
}


@pytest.mark.parametrize(
    ("cls", "variant", "attribute"),
    [(JinaEmbeddings, "v2_geglu_8h", "embedder"), (JinaReranker, "reranker_bf16", "reranker")],
)
def test_every_loading_option_reaches_the_model(tiny_checkpoints, cls, variant, attribute):
    adapter = cls(str(tiny_checkpoints[variant]), **EVERY_OPTION)
    model = getattr(adapter, attribute)
    assert model.options == jinarag.LoadOptions(**EVERY_OPTION)
    assert (model.max_length, model.max_batch_tokens) == (32, 256)
    assert str(model.dtype) == "torch.bfloat16"
    # The options are pydantic fields named as in LoadOptions, one each.
    assert set(jinarag.LoadOptions.names()) <= set(cls.model_fields)
    assert {name: getattr(adapter, name) for name in EVERY_OPTION} == EVERY_OPTION


@pytest.mark.parametrize(
    ("cls", "variant"), [(JinaEmbeddings, "v2_geglu_8h"), (JinaReranker, "reranker_bf16")]
)
def test_an_unknown_option_is_an_input_error_listing_the_accepted_ones(
    tiny_checkpoints, cls, variant
):
    with pytest.raises(jinarag.InputError) as info:
        cls(str(tiny_checkpoints[variant]), token="hf_x")
    message = str(info.value)
    assert cls.__name__ in message
    assert "token" in message
    for name in (*EVERY_OPTION, "model", "batch_size"):
        assert name in message
    # A bad value is the core's error too, not a pydantic ValidationError.
    with pytest.raises(jinarag.InputError, match="float8"):
        cls(str(tiny_checkpoints[variant]), dtype="float8")


# --- without LangChain -------------------------------------------------------------------

# `None` in sys.modules makes `import langchain_core` fail as if it were not installed; removing
# it again shows the failure came from that alone.
WITHOUT_LANGCHAIN = """
import sys
sys.modules["langchain_core"] = None
import jinarag
try:
    import jinarag.langchain
except ImportError as exc:
    print("ImportError:", exc)
else:
    print("imported while blocked")
del sys.modules["langchain_core"]
import jinarag.langchain
print("imported once unblocked:", jinarag.langchain.JinaEmbeddings.__name__)
"""


@pytest.mark.slow
def test_import_without_langchain_names_the_extra():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LANGCHAIN],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ImportError:")
    assert "pip install 'jinarag[langchain]'" in lines[0]
    assert lines[1] == "imported once unblocked: JinaEmbeddings"
