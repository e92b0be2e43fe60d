"""A LlamaIndex node postprocessor that reranks with a jinarag Reranker, local or served."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from jinarag.errors import InputError
from jinarag.inference.remote import RemoteReranker
from jinarag.inference.reranker import Reranker
from jinarag.inference.resolve import load_or_use
from jinarag.llama_index._loading import LoadingFields, check_fields, check_source, load_options
from jinarag.validation import check_choice, check_instance, ordered_list, positive_int

dispatcher = get_dispatcher(__name__)


class JinaRerank(LoadingFields, BaseNodePostprocessor):
    """Rerank retrieved nodes with a Jina cross-encoder running locally, or with the one a
    ``jinarag serve`` server runs (``base_url``).

    Returns new ``NodeWithScore`` objects (the inputs are left untouched) scored by the
    reranker, best first; each node's previous score is kept as ``metadata["retrieval_score"]``.
    The loading options are fields named as in ``jinarag.LoadOptions`` (``device``,
    ``dtype``, ``max_length``, ...); an unknown keyword is an ``InputError``, and so is one
    given with ``base_url``.

    Example:
        >>> from jinarag.llama_index import JinaRerank
        >>> reranker = JinaRerank("turbo", top_n=3)
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[reranker])
        >>> served = JinaRerank(base_url="http://127.0.0.1:8080", top_n=3)  # `jinarag serve`
    """

    model: str = Field(description="Reranker name or path.")
    top_n: int | None = Field(default=2, description="Nodes to keep; None keeps them all.")
    batch_size: int = Field(default=32, description="Query-document pairs per forward pass.")
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.NONE, description="Which metadata goes into the scored text."
    )
    base_url: str | None = Field(default=None, description="A jinarag server's root URL.")
    _reranker: Reranker | RemoteReranker = PrivateAttr()

    def __init__(
        self,
        model: str | None = None,
        *,
        reranker: Reranker | RemoteReranker | None = None,
        top_n: int | None = 2,
        batch_size: int = 32,
        metadata_mode: MetadataMode = MetadataMode.NONE,
        base_url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Load a reranker by name or path, wrap a ``reranker`` that is already loaded, or use
        the reranker of the server at ``base_url``.

        Args:
            model: Alias (``"turbo"``, ``"tiny"``, ``"base"``), Hub id or local directory.
            reranker: A loaded ``jinarag.Reranker``, instead of ``model``.
            top_n: How many nodes to return (2, the default of LlamaIndex's own rerankers,
                ``SentenceTransformerRerank`` and ``JinaRerank``); ``None`` returns all of
                them, reordered.
            batch_size: Query-document pairs per forward pass.
            metadata_mode: Metadata included in the text that is scored (none by default,
                so retrieval scores in the metadata do not leak into the model input).
            base_url: The root URL of a ``jinarag serve`` server whose reranker to use.
            api_key: The server's API key (kept out of the fields); None:
                ``$JINARAG_API_KEY`` when set.
            **kwargs: The loading options of ``jinarag.LoadOptions`` (``device="cpu"``,
                ``max_length=256``, ...) for a model loaded here, and other
                ``BaseNodePostprocessor`` fields (``callback_manager``).
        """
        check_fields("JinaRerank", type(self), kwargs, "reranker")
        check_source(
            "reranker",
            (Reranker, RemoteReranker),
            model,
            reranker,
            base_url=base_url,
            api_key=api_key,
        )
        top_n = positive_int("top_n", top_n, allow_none=True)
        batch_size = positive_int("batch_size", batch_size)
        # A MetadataMode is a str enum: its members and their values ("none", "all") match.
        metadata_mode = MetadataMode(
            check_choice("metadata_mode", metadata_mode, [mode.value for mode in MetadataMode])
        )
        reranker = load_or_use(
            "reranker",
            "JinaRerank",
            model,
            reranker,
            options=load_options(kwargs),
            base_url=base_url,
            api_key=api_key,
        )
        # The loading options stay in kwargs: they become the fields of the same names.
        super().__init__(
            model=reranker.name,
            top_n=top_n,
            batch_size=batch_size,
            metadata_mode=metadata_mode,
            base_url=base_url,
            **kwargs,
        )
        self._reranker = reranker

    @classmethod
    def class_name(cls) -> str:
        return "JinaRerank"

    @property
    def reranker(self) -> Reranker | RemoteReranker:
        """The loaded ``jinarag.Reranker`` (a ``RemoteReranker`` with ``base_url``)."""
        return self._reranker

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        nodes = ordered_list(nodes, "nodes", "NodeWithScore", "NodeWithScore(node=...)")
        for i, scored in enumerate(nodes):
            check_instance(
                f"nodes[{i}]", scored, NodeWithScore, "wrap a node as NodeWithScore(node=...)"
            )
        if query_bundle is None:
            raise InputError(
                "JinaRerank needs the query: call postprocess_nodes(nodes, query_str=...) or "
                "postprocess_nodes(nodes, query_bundle=QueryBundle(...))."
            )
        top_n = self.top_n if self.top_n is not None else len(nodes)
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=self.model)
        )
        payload = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            texts = [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]
            ranked = self._reranker.rank(
                query_bundle.query_str, texts, top_n=top_n, batch_size=self.batch_size
            )
            reranked = [_rescored(nodes[r.index], r.score) for r in ranked]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked


def _rescored(old: NodeWithScore, score: float) -> NodeWithScore:
    node = old.node.model_copy(deep=True)  # ours to change; the caller's node stays as it was
    if old.score is not None:
        # Kept for inspection, but out of the text the LLM and the embedder see.
        node.metadata["retrieval_score"] = old.score
        for excluded in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            if "retrieval_score" not in excluded:
                excluded.append("retrieval_score")
    return NodeWithScore(node=node, score=float(score))
