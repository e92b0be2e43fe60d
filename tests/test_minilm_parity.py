"""Real weights: our Embedder and Reranker on all-MiniLM-L6-v2 against sentence-transformers and
transformers, on the Cranfield queries and documents.

Documents are embedded as their ``text`` field alone: in this copy of Cranfield the text already
begins with the title, so ``title + " " + text`` would repeat it. Both sides get the same string.
"""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

MAX_LENGTH = 256


def _read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def cranfield_texts(cranfield_dir):
    queries = [q["text"] for q in _read(cranfield_dir / "queries.jsonl")]
    docs = [d["text"] for d in _read(cranfield_dir / "corpus.jsonl")[:200]]
    assert len(queries) == 225
    assert len(docs) == 200
    return queries, docs


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def test_embeddings_equal_sentence_transformers(minilm_dir, minilm_embedder, cranfield_texts):
    from sentence_transformers import SentenceTransformer

    queries, docs = cranfield_texts
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    st.max_seq_length = MAX_LENGTH
    assert minilm_embedder.max_length == MAX_LENGTH

    # Some documents are longer than 256 tokens, so both sides' truncation is compared too.
    lengths = [len(st.tokenizer(d)["input_ids"]) for d in docs]
    assert sum(n > MAX_LENGTH for n in lengths) > 10

    texts = queries + docs
    theirs = st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the truncation warning
        ours = minilm_embedder.embed(texts, batch_size=32)
    assert ours.shape == theirs.shape == (425, 384)
    cosines = _cosines(ours, theirs)
    assert cosines.min() >= 0.99999, (cosines.argmin(), cosines.min())
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # The query side of jina-style embedders has no prefix here, so it is the same vector.
    np.testing.assert_allclose(minilm_embedder.embed_query(queries[0]), ours[0], atol=1e-5)


def _pairs(cranfield_dir, queries, docs_by_id):
    """About 30 (query, document) pairs: judged documents of the first queries, some long."""
    pairs: list[tuple[int, str]] = []
    with open(cranfield_dir / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, _ = line.split("\t")
            if int(qid) <= 7 and len([p for p in pairs if p[0] == int(qid)]) < 5:
                pairs.append((int(qid), docs_by_id[did]))
    return [(queries[qid - 1], doc) for qid, doc in pairs]


def test_cross_encoder_scores_equal_transformers(
    minilm_reranker_dir, minilm_reranker, cranfield_dir, cranfield_texts
):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    queries, _ = cranfield_texts
    docs_by_id = {d["_id"]: d["text"] for d in _read(cranfield_dir / "corpus.jsonl")}
    pairs = _pairs(cranfield_dir, queries, docs_by_id)
    long_doc = " ".join(docs_by_id[str(i)] for i in range(1, 6))  # far beyond 256 tokens
    pairs += [(queries[0], long_doc), (queries[1], long_doc)]
    assert 30 <= len(pairs) <= 40

    tokenizer = AutoTokenizer.from_pretrained(minilm_reranker_dir)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_reranker_dir).eval()
    batch = tokenizer(
        [q for q, _ in pairs],
        [d for _, d in pairs],
        truncation="only_second",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        expected = model(**batch).logits[:, 0].double().numpy()
    assert expected.std() > 0.01  # the random head separates the pairs

    ours = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # One call per run of pairs sharing a query, so batching and sorting are exercised.
        for query, group in itertools.groupby(pairs, key=lambda pair: pair[0]):
            docs = [d for _, d in group]
            logits = minilm_reranker.score(query, docs, activation=None, batch_size=4)
            sigmoids = minilm_reranker.score(query, docs, batch_size=4)
            ours.extend(zip(logits, sigmoids, strict=True))
    logits = np.array([logit for logit, _ in ours])
    sigmoids = np.array([s for _, s in ours])
    # The random head spreads logits by only ~0.01, so hold them far tighter than that.
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sigmoids, 1 / (1 + np.exp(-expected)), rtol=0, atol=1e-6)
