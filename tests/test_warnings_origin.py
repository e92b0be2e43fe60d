"""A warning names the user's line: the first frame outside jinarag, however deep it arises
(the pipeline, checkpoint loading) and whichever public method or adapter was called."""

from __future__ import annotations

import inspect
import warnings

import pytest

import jinarag
from jinarag.errors import CheckpointWarning, TruncationWarning
from jinarag.langchain import JinaEmbeddings, JinaReranker

EMBEDDER = "v2_geglu_8h"  # WordPiece, hidden 32
RERANKER = "reranker_bf16"
LONG = " ".join(["boundary layer separation on a swept wing"] * 8)  # far over 16 tokens


def _caught(category: type[Warning], call, *args, **kwargs) -> warnings.WarningMessage:
    """The one warning of ``category`` that ``call(*args, **kwargs)`` issues."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        call(*args, **kwargs)
    found = [w for w in caught if issubclass(w.category, category)]
    assert len(found) == 1, [str(w.message) for w in caught]
    return found[0]


@pytest.fixture(scope="module")
def embedder(tiny_checkpoints):
    return jinarag.Embedder.from_pretrained(tiny_checkpoints[EMBEDDER], device="cpu", max_length=16)


def test_a_direct_embed_call_is_named(embedder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        line = inspect.currentframe().f_lineno + 1
        embedder.embed(["short", LONG])
    (warning,) = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert (warning.filename, warning.lineno) == (__file__, line)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.embed_documents([LONG]),
        lambda e: e.embed_queries([LONG]),
        lambda e: e.embed_query(LONG),
    ],
    ids=["embed_documents", "embed_queries", "embed_query"],
)
def test_every_embedding_method_names_the_caller(embedder, call):
    assert _caught(TruncationWarning, call, embedder).filename == __file__


def test_a_reranker_call_is_named(tiny_checkpoints):
    reranker = jinarag.Reranker.from_pretrained(
        tiny_checkpoints[RERANKER], device="cpu", max_length=16
    )
    for call in (reranker.score_pairs, reranker.rank):
        args = ([("wing", LONG)],) if call == reranker.score_pairs else ("wing", [LONG])
        assert _caught(TruncationWarning, call, *args).filename == __file__


def test_a_langchain_embeddings_call_is_named(tiny_checkpoints):
    embeddings = JinaEmbeddings(str(tiny_checkpoints[EMBEDDER]), device="cpu", max_length=16)
    warning = _caught(TruncationWarning, embeddings.embed_documents, ["short", LONG])
    assert warning.filename == __file__  # not jinarag/inference/api.py, nor the adapter
    assert _caught(TruncationWarning, embeddings.embed_query, LONG).filename == __file__


def test_a_langchain_reranker_call_is_named(tiny_checkpoints):
    from langchain_core.documents import Document

    reranker = JinaReranker(str(tiny_checkpoints[RERANKER]), device="cpu", max_length=16)
    warning = _caught(
        TruncationWarning, reranker.compress_documents, [Document(page_content=LONG)], "wing"
    )
    assert warning.filename == __file__


def test_a_checkpoint_warning_names_the_adapters_caller(tiny_checkpoints):
    path = str(tiny_checkpoints[RERANKER])  # a cross-encoder, loaded as an embedder
    assert _caught(CheckpointWarning, JinaEmbeddings, path, device="cpu").filename == __file__
    warning = _caught(CheckpointWarning, jinarag.Embedder.from_pretrained, path, device="cpu")
    assert warning.filename == __file__


def test_the_skipped_directories_are_jinarags_own():
    from jinarag.errors import _package_dirs

    dirs = _package_dirs()
    assert all(d.endswith(("/", "\\")) for d in dirs)
    assert any(jinarag.__file__.startswith(d) for d in dirs)
    assert any(inspect.getfile(JinaEmbeddings).startswith(d) for d in dirs)  # the adapters'
    assert not any(__file__.startswith(d) for d in dirs)
