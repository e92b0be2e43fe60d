"""A LlamaIndex embedding model over a jinarag Embedder, local or on a `jinarag serve` server."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from jinarag.inference.embedder import Embedder
from jinarag.inference.remote import RemoteEmbedder
from jinarag.inference.resolve import load_or_use
from jinarag.inference.task_fields import TaskFields
from jinarag.llama_index._loading import LoadingFields, check_fields, check_source, load_options
from jinarag.validation import check_bool, check_number, positive_int

# BaseEmbedding's own bound on embed_batch_size (its field says le=2048).
MAX_EMBED_BATCH_SIZE = 2048


class JinaEmbedding(LoadingFields, BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` running a Jina embedding model locally, or calling the
    one a ``jinarag serve`` server runs (``base_url``).

    Queries go through the embedder's query side, nodes through its document side (a server
    sends queries as they are). The loading options are fields named as in
    ``jinarag.LoadOptions`` (``device``, ``dtype``, ``max_length``, ...); an unknown keyword
    is an ``InputError``, and so is one given with ``base_url``. jina-embeddings-v3's
    ``task`` (nodes), ``query_task`` (queries) and ``dimensions`` (Matryoshka) are checked
    against the model when it is made (over a server, at the first call).

    Example:
        >>> from llama_index.core import VectorStoreIndex, Document
        >>> from jinarag.llama_index import JinaEmbedding
        >>> embed_model = JinaEmbedding("small")
        >>> index = VectorStoreIndex.from_documents(
        ...     [Document(text="Lift grows with the angle of attack.")], embed_model=embed_model
        ... )
        >>> served = JinaEmbedding(base_url="http://127.0.0.1:8080")  # `jinarag serve`
    """

    normalize: bool = Field(default=True, description="L2-normalise the vectors.")
    base_url: str | None = Field(default=None, description="A jinarag server's root URL.")
    task: str | None = Field(default=None, description="The task adapter of nodes (v3).")
    query_task: str | None = Field(default=None, description="The task adapter of queries.")
    dimensions: int | None = Field(default=None, description="Matryoshka dimensions kept.")
    _embedder: Embedder | RemoteEmbedder = PrivateAttr()
    _fields: TaskFields = PrivateAttr()

    def __init__(
        self,
        model_name: str | None = None,
        *,
        embedder: Embedder | RemoteEmbedder | None = None,
        normalize: bool = True,
        embed_batch_size: int = 32,
        base_url: str | None = None,
        api_key: str | None = None,
        task: str | None = None,
        query_task: str | None = None,
        dimensions: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Load a model by name or path, wrap an ``embedder`` that is already loaded, or use
        the model of the server at ``base_url``.

        Args:
            model_name: Alias (``"small"``, ``"base"``), Hub id or local directory.
            embedder: A loaded ``jinarag.Embedder``, instead of ``model_name``.
            normalize: L2-normalise the vectors.
            embed_batch_size: Texts per batch.
            base_url: The root URL of a ``jinarag serve`` server whose model to use.
            api_key: The server's API key (kept out of the fields); None:
                ``$JINARAG_API_KEY`` when set.
            task: The task adapter of nodes (jina-embeddings-v3); None: the model's
                default, ``retrieval.passage``.
            query_task: The task adapter of queries; None: ``retrieval.query``.
            dimensions: Matryoshka dimensions to keep (jina-embeddings-v3); None: all.
            **kwargs: The loading options of ``jinarag.LoadOptions`` (``device="cpu"``,
                ``max_length=256``, ...) for a model loaded here, and other ``BaseEmbedding``
                fields (``callback_manager``, ``num_workers``).
        """
        check_fields("JinaEmbedding", type(self), kwargs, "embedder")
        check_source(
            "embedder",
            (Embedder, RemoteEmbedder),
            model_name,
            embedder,
            name_arg="model_name",
            base_url=base_url,
            api_key=api_key,
        )
        normalize = check_bool("normalize", normalize)
        embed_batch_size = positive_int("embed_batch_size", embed_batch_size)
        check_number("embed_batch_size", embed_batch_size, high=MAX_EMBED_BATCH_SIZE)
        fields = TaskFields.checked(task, query_task, dimensions)
        embedder = load_or_use(
            "embedder",
            "JinaEmbedding",
            model_name,
            embedder,
            name_arg="model_name",
            options=load_options(kwargs),
            base_url=base_url,
            api_key=api_key,
        )
        # The loading options stay in kwargs: they become the fields of the same names.
        super().__init__(
            model_name=embedder.name,
            normalize=normalize,
            embed_batch_size=embed_batch_size,
            base_url=base_url,
            **fields.as_dict(),
            **kwargs,
        )
        self._embedder = embedder
        self._fields = fields.for_model(embedder)

    @classmethod
    def class_name(cls) -> str:
        return "JinaEmbedding"

    @property
    def embedder(self) -> Embedder | RemoteEmbedder:
        """The loaded ``jinarag.Embedder`` (a ``RemoteEmbedder`` with ``base_url``)."""
        return self._embedder

    def _get_query_embedding(self, query: str) -> Embedding:
        options = self._fields.queries()
        return self._embedder.embed_query(query, normalize=self.normalize, **options).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        vectors = self._embedder.embed_documents(
            texts,
            batch_size=self.embed_batch_size,
            normalize=self.normalize,
            **self._fields.documents(),
        )
        return vectors.tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
