"""A LlamaIndex transformation that splits Documents and embeds the chunks by late chunking."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.node_parser.node_utils import build_nodes_from_splits
from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    NodeRelationship,
    TransformComponent,
)

from jinarag.errors import InputError
from jinarag.inference.embedder import Embedder
from jinarag.inference.resolve import load_or_use
from jinarag.llama_index._loading import LoadingFields, check_fields, check_source, load_options
from jinarag.retrieval.ingest.late import DEFAULT_CHUNK_TOKENS, LATE_CHUNK_BY, split_text
from jinarag.retrieval.layout import CHUNK_KEYS as RECORD_CHUNK_KEYS
from jinarag.retrieval.layout import chunk_metadata
from jinarag.validation import check_bool, check_choice, ordered_list, positive_int

# Metadata each chunk node of a split Document gets (kept out of the embedded and LLM text):
# the record layout's chunk keys but `doc_id`, which LlamaIndex keeps as the node's source.
CHUNK_KEYS = tuple(key for key in RECORD_CHUNK_KEYS if key != "doc_id")


class JinaLateChunker(LoadingFields, TransformComponent):
    """Split Documents into chunk nodes whose embeddings come from late chunking.

    The model reads each document whole and each chunk's vector is the mean of its own tokens'
    output states (``jinarag.Embedder.embed_late_chunks``), so a chunk that says "it" still
    knows what "it" is. Use it as the last transformation of an ``IngestionPipeline``: the
    nodes it returns already have their ``embedding``, which a ``VectorStoreIndex`` keeps.

    What it does with each input node, in order:

    - A ``Document`` is split (``jinarag.retrieval.ingest.late.split_text``: about ``chunk_tokens``
      tokens per chunk cut at word starts, or one sentence per chunk with
      ``chunk_by="sentences"``) into new ``TextNode`` objects, one per chunk, in its place.
      Each has the chunk's text, a ``SOURCE`` relationship to the Document and
      ``PREVIOUS``/``NEXT`` ones to its neighbours, ``start_char_idx``/``end_char_idx`` (the
      chunk's span in the Document's text), the Document's metadata plus ``chunk`` (its
      position, from 0), ``span_start`` and ``span_end``; those three keys are kept out of the
      text the LLM and the embedder see. The Document's own embedding, if any, is not carried
      over: it describes the whole text, not a chunk.
    - Any other node is a chunk already (from a splitter earlier in the pipeline). Nodes with
      the same ``ref_doc_id`` are one document, read as their texts joined with a space (each
      text stripped of leading and trailing whitespace), in input order; a node without
      ``ref_doc_id`` is a document of its own. Only nodes whose ``embedding`` is None get one:
      a node that has one is returned as it is, yet its text is still read as context for its
      neighbours; a document whose nodes all have one is not read at all. Nodes are returned
      as copies; the input nodes are not changed.

    The text read is the node's content without metadata (``MetadataMode.NONE``). A document
    longer than the model's ``max_length`` is read in overlapping windows. The loading options
    are fields named as in ``jinarag.LoadOptions`` (``device``, ``dtype``, ``max_length``, ...);
    an unknown keyword or a bad value is an ``InputError``.

    Example:
        >>> from llama_index.core import Document, VectorStoreIndex
        >>> from llama_index.core.ingestion import IngestionPipeline
        >>> from jinarag.llama_index import JinaEmbedding, JinaLateChunker
        >>> embed_model = JinaEmbedding("small")
        >>> chunker = JinaLateChunker(embedder=embed_model.embedder, chunk_tokens=128)
        >>> nodes = IngestionPipeline(transformations=[chunker]).run(
        ...     documents=[Document(text="The wing stalls. It then loses lift.")]
        ... )
        >>> index = VectorStoreIndex(nodes, embed_model=embed_model)
    """

    model_name: str = Field(description="The embedder's name or path.")
    chunk_by: str = Field(default="tokens", description='"tokens" or "sentences".')
    chunk_tokens: int = Field(
        default=DEFAULT_CHUNK_TOKENS, description="About this many tokens per chunk (by tokens)."
    )
    normalize: bool = Field(default=True, description="L2-normalise the vectors.")
    batch_size: int = Field(default=32, description="Model windows per forward pass.")
    _embedder: Embedder = PrivateAttr()

    def __init__(
        self,
        model_name: str | None = None,
        *,
        embedder: Embedder | None = None,
        chunk_by: str = "tokens",
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        normalize: bool = True,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        """Load a model by name or path, or use an ``embedder`` that is already loaded.

        Args:
            model_name: Alias (``"small"``, ``"base"``), Hub id or local directory.
            embedder: A loaded ``jinarag.Embedder`` (e.g. ``JinaEmbedding(...).embedder``, to
                share one model with the query side), instead of ``model_name``.
            chunk_by: ``"tokens"`` or ``"sentences"``: how Documents are split.
            chunk_tokens: About this many tokens per chunk when splitting by tokens.
            normalize: L2-normalise the vectors.
            batch_size: Model windows per forward pass.
            **kwargs: The loading options of ``jinarag.LoadOptions`` (``device="cpu"``,
                ``max_length=512``, ...) for a model loaded here.
        """
        if "base_url" in kwargs:
            raise InputError(
                "JinaLateChunker splits Documents with the model's tokenizer, which a jinarag "
                "server does not share, so it takes no base_url; over a server, embed a "
                "document's chunks with JinaEmbedding(base_url=...).embedder."
                "embed_late_chunks(chunks), or load the model here with model_name="
            )
        check_fields("JinaLateChunker", type(self), kwargs, "embedder")
        check_source("embedder", (Embedder,), model_name, embedder, name_arg="model_name")
        chunk_by = check_choice("chunk_by", chunk_by, LATE_CHUNK_BY)
        chunk_tokens = positive_int("chunk_tokens", chunk_tokens)
        normalize = check_bool("normalize", normalize)
        batch_size = positive_int("batch_size", batch_size)
        embedder = load_or_use(
            "embedder",
            "JinaLateChunker",
            model_name,
            embedder,
            name_arg="model_name",
            options=load_options(kwargs),
        )
        super().__init__(
            model_name=embedder.name,
            chunk_by=chunk_by,
            chunk_tokens=chunk_tokens,
            normalize=normalize,
            batch_size=batch_size,
            **kwargs,
        )
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "JinaLateChunker"

    @property
    def embedder(self) -> Embedder:
        """The loaded ``jinarag.Embedder``."""
        return self._embedder

    def __call__(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        """Split the Documents among ``nodes`` and embed every chunk that has no embedding."""
        show_progress = check_bool("show_progress", show_progress)
        nodes = ordered_list(nodes, "nodes", "nodes", "Document(text=...)", one="node")
        # One entry per document the model reads: (chunk texts, what gets the vectors).
        reads: list[tuple[list[str], int | list[int]]] = []
        splits: dict[int, list[tuple[int, int]]] = {}
        groups: dict[Any, list[int]] = {}
        for position, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InputError(
                    f"nodes[{position}] is {type(node).__name__} {node!r:.60}, not a "
                    "LlamaIndex node; wrap texts as Document(text=...) first"
                )
            if isinstance(node, Document):
                text = node.get_content(metadata_mode=MetadataMode.NONE)
                spans = split_text(
                    text,
                    self._embedder.tokenizer.token_offsets,
                    by=self.chunk_by,
                    chunk_tokens=self.chunk_tokens,
                )
                if not spans:
                    raise InputError(
                        f"nodes[{position}] (Document {node.id_!r}) has no text: there is "
                        "nothing to chunk; drop it before this transformation"
                    )
                _check_free_keys(node, position)
                splits[position] = spans
                reads.append(([text[a:b] for a, b in spans], position))
            else:
                key = node.ref_doc_id if node.ref_doc_id is not None else ("own", position)
                groups.setdefault(key, []).append(position)
        for group in groups.values():
            if all(nodes[i].embedding is not None for i in group):
                continue
            texts = []
            for i in group:
                text = nodes[i].get_content(metadata_mode=MetadataMode.NONE).strip()
                if not text:
                    raise InputError(
                        f"nodes[{i}] (node {nodes[i].node_id!r}) has no text: late chunking "
                        "needs text in every chunk; drop it before this transformation"
                    )
                texts.append(text)
            reads.append((texts, group))
        vectors = self._embedder.embed_late_chunks_many(
            [texts for texts, _ in reads],
            normalize=self.normalize,
            batch_size=self.batch_size,
            show_progress=show_progress,
        )
        out: list[list[BaseNode]] = [[node.model_copy()] for node in nodes]
        for (_, target), rows in zip(reads, vectors, strict=True):
            if isinstance(target, int):  # a Document, split
                out[target] = _chunk_nodes(nodes[target], splits[target], rows.tolist())
            else:  # a group of chunk nodes
                for i, row in zip(target, rows, strict=True):
                    if nodes[i].embedding is None:
                        out[i][0].embedding = row.tolist()
        return [node for replaced in out for node in replaced]

    async def acall(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        """``__call__`` in a worker thread, so the event loop stays free."""
        return await asyncio.to_thread(self.__call__, nodes, show_progress, **kwargs)


def _check_free_keys(document: Document, position: int) -> None:
    for key in CHUNK_KEYS:
        if key in document.metadata:
            raise InputError(
                f"nodes[{position}] (Document {document.id_!r}) already has metadata[{key!r}], "
                f"which JinaLateChunker sets on each chunk ({', '.join(CHUNK_KEYS)}); rename "
                "that key"
            )


def _chunk_nodes(
    document: Document, spans: list[tuple[int, int]], vectors: list[list[float]]
) -> list[BaseNode]:
    text = document.get_content(metadata_mode=MetadataMode.NONE)
    chunks = build_nodes_from_splits([text[a:b] for a, b in spans], document)
    excluded_embed = [*document.excluded_embed_metadata_keys, *CHUNK_KEYS]
    excluded_llm = [*document.excluded_llm_metadata_keys, *CHUNK_KEYS]
    for number, (node, (start, end), vector) in enumerate(zip(chunks, spans, vectors, strict=True)):
        node.embedding = vector
        node.start_char_idx, node.end_char_idx = start, end
        node.metadata = chunk_metadata(document.metadata, None, number, (start, end))
        node.excluded_embed_metadata_keys = list(excluded_embed)
        node.excluded_llm_metadata_keys = list(excluded_llm)
    for before, after in zip(chunks, chunks[1:], strict=False):
        before.relationships[NodeRelationship.NEXT] = after.as_related_node_info()
        after.relationships[NodeRelationship.PREVIOUS] = before.as_related_node_info()
    return list(chunks)
