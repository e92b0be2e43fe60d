"""A LlamaIndex retriever over a jinarag HybridIndex (dense + BM25 with fusion)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, QueryType, TextNode
from llama_index.core.vector_stores.types import MetadataFilters

from jinarag.errors import InputError
from jinarag.llama_index.filters import combined, to_where
from jinarag.retrieval.search.plan import plan_search
from jinarag.validation import check_instance, positive_int

if TYPE_CHECKING:
    from jinarag import Hit, HybridIndex


class JinaHybridRetriever(BaseRetriever):
    """Retrieve nodes from a ``jinarag.HybridIndex``.

    Each node's score is the hit's score (fused, dense or BM25, by ``mode``); the metadata holds
    the stored metadata plus ``score``, ``score_space`` and each source's rank and score. Those
    score fields are kept out of the text the LLM and the embedder see.

    Example:
        >>> import jinarag
        >>> from jinarag.llama_index import JinaHybridRetriever
        >>> embedder = jinarag.Embedder.from_pretrained("small")
        >>> index = jinarag.HybridIndex(path="./index", embedder=embedder)
        >>> retriever = JinaHybridRetriever(index, similarity_top_k=5, mode="hybrid")
        >>> nodes = retriever.retrieve("what increases lift?")
    """

    def __init__(
        self,
        index: HybridIndex,
        *,
        similarity_top_k: int | None = None,
        k: int | None = None,
        mode: str = "hybrid",
        fusion: str | None = None,
        weights: Sequence[float] | None = None,
        where: dict[str, Any] | None = None,
        filters: MetadataFilters | None = None,
        **kwargs: Any,
    ) -> None:
        """Search ``index`` with these options on every ``retrieve``.

        Args:
            index: The hybrid index to search.
            similarity_top_k: How many nodes to return (10 when neither this nor ``k`` is given).
            k: The same as ``similarity_top_k``, under the name the index uses.
            mode: ``"hybrid"``, ``"dense"`` or ``"bm25"``.
            fusion: ``"rrf"``, ``"relative"`` or ``"dbsf"`` (hybrid mode); None: the index's.
            weights: ``(dense, bm25)`` fusion weights (hybrid mode); None: the index's.
            where: A Chroma metadata filter applied to both sources.
            filters: LlamaIndex's ``MetadataFilters``, applied to both sources as well
                (translated to a Chroma ``where`` by ``jinarag.llama_index.filters``; with
                ``where`` too, both apply). An operator Chroma cannot express (``any``,
                ``all``, ``text_match``, ``contains``, ``is_empty``) or the ``not`` condition
                is an ``InputError``.
            **kwargs: ``BaseRetriever`` options (``callback_manager``, ``verbose``).
        """
        # Checked here, so a bad value is an InputError when the retriever is made.
        # Imported here: chromadb is slow to import, and an index has imported it already.
        from jinarag.retrieval.index import checked_index

        index = checked_index(index)
        similarity_top_k = positive_int("similarity_top_k", similarity_top_k, allow_none=True)
        k = positive_int("k", k, allow_none=True)
        if similarity_top_k is not None and k is not None and similarity_top_k != k:
            raise InputError(
                f"JinaHybridRetriever got similarity_top_k={similarity_top_k} and k={k}; "
                "they are the same setting, pass one of them."
            )
        top_k = similarity_top_k if similarity_top_k is not None else k
        top_k = top_k if top_k is not None else 10
        search_where = combined(where, to_where(filters))
        plan_search(index.defaults, "", top_k, mode, fusion, weights, search_where)  # its checks
        self.index = index
        self.similarity_top_k = top_k
        self.mode = mode
        self.fusion = fusion
        self.weights = weights
        self.where = where
        self.filters = filters
        self._search_where = search_where
        super().__init__(**kwargs)

    def retrieve(self, str_or_query_bundle: QueryType) -> list[NodeWithScore]:
        """The nodes for a query string or a ``QueryBundle``."""
        return super().retrieve(_checked_query(str_or_query_bundle))

    async def aretrieve(self, str_or_query_bundle: QueryType) -> list[NodeWithScore]:
        """``retrieve``, with the search in a worker thread."""
        return await super().aretrieve(_checked_query(str_or_query_bundle))

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(
            query_bundle.query_str,
            k=self.similarity_top_k,
            mode=self.mode,
            fusion=self.fusion,
            weights=self.weights,
            where=self._search_where,
        )
        return [_to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _checked_query(query: Any) -> QueryType:
    # LlamaIndex takes anything that is not a string for a QueryBundle, and fails on it later.
    return check_instance(
        "query", query, (str, QueryBundle), "pass the query text, or a QueryBundle"
    )


def _to_node(hit: Hit) -> NodeWithScore:
    metadata = hit.scored_metadata()
    score_keys = [key for key in metadata if key not in hit.metadata]
    node = TextNode(
        id_=hit.id,
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=score_keys,
        excluded_embed_metadata_keys=score_keys,
    )
    return NodeWithScore(node=node, score=hit.score)
