"""jinarag.haystack components on their own: sides, scores, copies, async, serialisation.

Runs under haystack-ai 3.x (.venv) and 2.x (.venv-haystack2); uses only what both have.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.utils import ComponentDevice

import jinarag
from jinarag.errors import InputError
from jinarag.haystack import (
    JinaDocumentEmbedder,
    JinaHybridRetriever,
    JinaRanker,
    JinaTextEmbedder,
)


def cranfield_docs(cranfield_dir: Path, n: int, words: int = 40) -> list[Document]:
    """The first `n` Cranfield abstracts, cut to `words` words (short enough not to truncate)."""
    docs = []
    with open(cranfield_dir / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            docs.append(
                Document(
                    id=row["_id"],
                    content=" ".join(row["text"].split()[:words]),
                    meta={"title": row.get("title", "")},
                )
            )
            if len(docs) == n:
                break
    return docs


@pytest.fixture(scope="module")
def sided_embedder(minilm_dir):
    """MiniLM with distinct query and document prefixes, so the two sides give other vectors."""
    return jinarag.Embedder.from_pretrained(
        minilm_dir, max_length=256, query_prefix="query: ", document_prefix="passage: "
    )


@pytest.fixture(scope="module")
def ranker(minilm_reranker_dir):
    component = JinaRanker(model=minilm_reranker_dir, max_length=256, top_k=None)
    component.warm_up()
    return component


@pytest.fixture(scope="module")
def docs(cranfield_dir):
    return cranfield_docs(cranfield_dir, 8)


QUERY = (
    "what similarity laws must be obeyed when constructing aeroelastic models "
    "of heated high speed aircraft"
)


def test_text_embedder_uses_the_query_side(sided_embedder):
    component = JinaTextEmbedder(model="unused-because-injected", prefix="<", suffix=">")
    component.embedder = sided_embedder  # a loaded model is kept by warm_up
    component.warm_up()
    assert component.embedder is sided_embedder

    vector = np.asarray(component.run(text=QUERY)["embedding"])
    query_side = sided_embedder.embed_query("<" + QUERY + ">")
    document_side = sided_embedder.embed_documents(["<" + QUERY + ">"])[0]
    np.testing.assert_allclose(vector, query_side, atol=1e-6)
    assert not np.allclose(vector, document_side, atol=1e-3)


def test_document_embedder_uses_the_document_side_and_returns_new_documents(sided_embedder, docs):
    component = JinaDocumentEmbedder(
        model="unused-because-injected", meta_fields_to_embed=["title"], progress_bar=False
    )
    component.embedder = sided_embedder
    before = copy.deepcopy(docs)

    out = component.run(documents=docs)["documents"]

    assert docs == before  # inputs untouched
    assert all(doc.embedding is None for doc in docs)
    assert [d.id for d in out] == [d.id for d in docs]
    assert all(new is not old for new, old in zip(out, docs, strict=True))
    texts = [f"{d.meta['title']}\n{d.content}" for d in docs]
    expected = sided_embedder.embed_documents(texts)
    np.testing.assert_allclose(np.array([d.embedding for d in out]), expected, atol=1e-5)
    assert not np.allclose(out[0].embedding, sided_embedder.embed_queries(texts[:1])[0], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
    out[0].meta["title"] = "edited downstream"  # the result owns its metadata
    assert docs == before


def test_normalize_embeddings_false_gives_the_raw_mean(minilm_embedder, minilm_dir):
    component = JinaDocumentEmbedder(
        model=minilm_dir, max_length=256, normalize_embeddings=False, progress_bar=False
    )
    out = component.run(documents=[Document(content="a wing in a slipstream")])["documents"]
    raw = minilm_embedder.embed(["a wing in a slipstream"], normalize=False)[0]
    np.testing.assert_allclose(out[0].embedding, raw, atol=1e-5)
    assert abs(np.linalg.norm(raw) - 1.0) > 1e-3


def test_ranker_orders_by_the_reranker_score(ranker, minilm_reranker, docs):
    before = copy.deepcopy(docs)
    out = ranker.run(query=QUERY, documents=docs)["documents"]

    scores = minilm_reranker.score(QUERY, [d.content for d in docs])
    order = np.argsort(-scores, kind="stable")
    assert [d.id for d in out] == [docs[i].id for i in order]
    np.testing.assert_allclose([d.score for d in out], scores[order], atol=1e-5)
    assert all(0.0 < d.score < 1.0 for d in out)
    assert docs == before and all(d.score is None for d in docs)
    assert all(isinstance(d.score, float) for d in out)
    out[0].meta["title"] = "edited downstream"  # the result owns its metadata
    assert docs == before


def test_ranker_raw_logits_top_k_and_threshold(ranker, minilm_reranker, docs):
    logits = minilm_reranker.score(QUERY, [d.content for d in docs], activation=None)
    raw = ranker.run(query=QUERY, documents=docs, scale_score=False)["documents"]
    np.testing.assert_allclose(
        sorted((d.score for d in raw), reverse=True), np.sort(logits)[::-1], atol=1e-4
    )

    top = ranker.run(query=QUERY, documents=docs, top_k=3)["documents"]
    assert [d.id for d in top] == [d.id for d in raw[:3]]

    threshold = float(np.median(1 / (1 + np.exp(-logits))))
    kept = ranker.run(query=QUERY, documents=docs, score_threshold=threshold)["documents"]
    assert 0 < len(kept) < len(docs)
    assert all(d.score >= threshold for d in kept)
    assert [d.id for d in kept] == [d.id for d in raw[: len(kept)]]


def test_ranker_init_values_apply_and_meta_fields_are_scored(
    minilm_reranker_dir, minilm_reranker, docs
):
    component = JinaRanker(
        model=minilm_reranker_dir,
        max_length=256,
        top_k=2,
        scale_score=False,
        meta_fields_to_embed=["title"],
        embedding_separator=" | ",
    )
    out = component.run(query=QUERY, documents=docs)["documents"]
    logits = minilm_reranker.score(
        QUERY, [f"{d.meta['title']} | {d.content}" for d in docs], activation=None
    )
    order = np.argsort(-logits, kind="stable")[:2]
    assert [d.id for d in out] == [docs[i].id for i in order]
    np.testing.assert_allclose([d.score for d in out], logits[order], atol=1e-4)


def test_ranker_with_no_documents(ranker):
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}


def test_wrong_inputs_name_the_fix(ranker, sided_embedder):
    with pytest.raises(InputError, match=r"documents\[1\] is str"):
        ranker.run(query=QUERY, documents=[Document(content="x"), "plain text"])
    text_embedder = JinaTextEmbedder(model="unused-because-injected")
    text_embedder.embedder = sided_embedder
    with pytest.raises(InputError, match="JinaDocumentEmbedder"):
        text_embedder.run(text=[Document(content="x")])


def test_warm_up_twice_keeps_the_same_model(minilm_dir, minilm_reranker_dir):
    for component, attr in (
        (JinaTextEmbedder(model=minilm_dir, max_length=64), "embedder"),
        (JinaDocumentEmbedder(model=minilm_dir, max_length=64), "embedder"),
        (JinaRanker(model=minilm_reranker_dir, max_length=64), "reranker"),
    ):
        assert getattr(component, attr) is None  # nothing loaded in __init__
        component.warm_up()
        first = getattr(component, attr)
        component.warm_up()
        assert isinstance(first, jinarag.Embedder | jinarag.Reranker)
        assert getattr(component, attr) is first


def test_run_async_equals_run(ranker, sided_embedder, docs):
    text_embedder = JinaTextEmbedder(model="unused-because-injected")
    text_embedder.embedder = sided_embedder
    doc_embedder = JinaDocumentEmbedder(model="unused-because-injected", progress_bar=False)
    doc_embedder.embedder = sided_embedder

    async def both():
        return await asyncio.gather(
            text_embedder.run_async(text=QUERY),
            doc_embedder.run_async(documents=docs),
            ranker.run_async(query=QUERY, documents=docs, top_k=4),
        )

    text_out, doc_out, rank_out = asyncio.run(both())
    assert text_out == text_embedder.run(text=QUERY)
    assert doc_out == doc_embedder.run(documents=docs)
    assert rank_out == ranker.run(query=QUERY, documents=docs, top_k=4)
    assert len(rank_out["documents"]) == 4


@pytest.mark.parametrize(
    "component",
    [
        JinaTextEmbedder(model=Path("/models/small"), device="cpu", prefix="q: ", batch_size=7),
        JinaDocumentEmbedder(
            model="small",
            device=ComponentDevice.from_str("cpu"),
            meta_fields_to_embed=["title"],
            embedding_separator=" | ",
            normalize_embeddings=False,
            max_length=128,
        ),
        JinaRanker(
            model="turbo", top_k=3, score_threshold=0.25, scale_score=False, local_files_only=True
        ),
    ],
    ids=["text", "document", "ranker"],
)
def test_to_dict_from_dict_round_trip(component):
    data = component.to_dict()
    cls = type(component)
    assert data["type"] == f"{cls.__module__}.{cls.__name__}"
    json.dumps(data)  # plain data only: it has to go through YAML
    assert isinstance(data["init_parameters"]["model"], str)
    restored = cls.from_dict(copy.deepcopy(data))
    assert type(restored) is cls
    assert restored.to_dict() == data
    for name in inspect.signature(cls.__init__).parameters:
        if name != "self":
            value = getattr(component, name)
            assert getattr(restored, name) == (str(value) if isinstance(value, Path) else value)


def test_device_given_as_component_device_loads_on_it(minilm_dir):
    component = JinaTextEmbedder.from_dict(
        JinaTextEmbedder(model=minilm_dir, device=ComponentDevice.from_str("cpu")).to_dict()
    )
    assert isinstance(component.device, ComponentDevice)
    component.warm_up()
    assert str(component.embedder.device) == "cpu"


# --- loading options ----------------------------------------------------------------------

# Every loading option away from its default; `device` is Haystack's own parameter. (A local
# directory ignores the revision, but it is still checked and passed on.)
EVERY_OPTION = {
    "dtype": "bfloat16",
    "max_length": 32,
    "revision": "main",
    "local_files_only": True,
    "max_batch_tokens": 256,
    "attention": "eager",
    "num_threads": 1,
}
COMPONENTS = [
    (JinaTextEmbedder, "v2_geglu_8h", "embedder"),
    (JinaDocumentEmbedder, "v2_geglu_8h", "embedder"),
    (JinaRanker, "reranker_bf16", "reranker"),
]


@pytest.mark.parametrize(("cls", "variant", "attribute"), COMPONENTS)
def test_every_loading_option_reaches_the_model(tiny_checkpoints, cls, variant, attribute):
    component = cls(model=tiny_checkpoints[variant], device="cpu", **EVERY_OPTION)
    assert getattr(component, attribute) is None  # checked now, loaded by warm_up
    component.warm_up()
    model = getattr(component, attribute)
    assert model.options == jinarag.LoadOptions(device="cpu", **EVERY_OPTION)
    assert (model.max_length, model.max_batch_tokens) == (32, 256)
    assert str(model.dtype) == "torch.bfloat16"


def test_the_retriever_loads_its_embedder_with_every_option():
    from jinarag.haystack._common import load_options

    retriever = JinaHybridRetriever(
        model="small", device=ComponentDevice.from_str("cpu"), **EVERY_OPTION
    )
    assert load_options(retriever) == jinarag.LoadOptions(device="cpu", **EVERY_OPTION)


ALL_COMPONENTS = [JinaTextEmbedder, JinaDocumentEmbedder, JinaRanker, JinaHybridRetriever]


@pytest.mark.parametrize("cls", ALL_COMPONENTS, ids=lambda cls: cls.__name__)
def test_a_yaml_round_trip_keeps_every_option(cls):
    import yaml

    component = cls(model="small", device="cpu", **EVERY_OPTION)
    data = component.to_dict()
    assert {name: data["init_parameters"][name] for name in EVERY_OPTION} == EVERY_OPTION
    restored = cls.from_dict(yaml.safe_load(yaml.safe_dump(data)))
    assert restored.load_options == component.load_options
    assert restored.to_dict() == data
    # Defaults are written too, so a pipeline file shows every option it can set.
    defaults = cls(model="small").to_dict()["init_parameters"]
    assert {name: defaults[name] for name in EVERY_OPTION} == {
        name: "auto" if name in ("dtype", "attention") else None for name in EVERY_OPTION
    }


@pytest.mark.parametrize("cls", ALL_COMPONENTS, ids=lambda cls: cls.__name__)
def test_an_unknown_option_is_an_input_error_listing_the_accepted_ones(cls):
    with pytest.raises(InputError) as info:
        cls(model="small", token="hf_x")
    message = str(info.value)
    assert cls.__name__ in message
    assert "token" in message
    assert "hf_x" not in message
    for name in ("model", "device", *EVERY_OPTION):
        assert name in message
    with pytest.raises(InputError, match="top_k"):
        cls(model="small", top_kk=3)  # a near miss is named, with the parameter it missed
    with pytest.raises(InputError, match="float8"):
        cls(model="small", dtype="float8")  # bad values fail at creation, not at warm_up


def test_no_adapter_imports_the_cli():
    import ast

    integrations = Path(__file__).parent.parent / "integrations"
    offenders = []
    for path in sorted(integrations.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("jinarag.cli")]
    assert offenders == []


@pytest.mark.slow
def test_import_without_haystack_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['haystack'] = None\n"
        "try:\n"
        "    import jinarag.haystack\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "pip install 'jinarag[haystack]'" in out
