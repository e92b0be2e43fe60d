"""`JinaEmbeddings`: LangChain's `Embeddings` over a local `jinarag.Embedder`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, PrivateAttr, SecretStr

from jinarag.errors import InputError
from jinarag.inference.resolve import load_or_use
from jinarag.inference.task_fields import TASK_FIELDS, TaskFields
from jinarag.langchain._loading import (
    LoadingFields,
    check_fields,
    check_source,
    check_values,
    document_list,
    load_options,
    secret_value,
)
from jinarag.langchain.conventions import embeddings_data
from jinarag.retrieval.ingest.late import DEFAULT_CHUNK_TOKENS, LATE_CHUNK_BY, late_chunk_many
from jinarag.retrieval.layout import CHUNK_KEYS, chunk_metadata
from jinarag.retrieval.write.records import content_id
from jinarag.validation import check_bool, check_choice, positive_int


class JinaEmbeddings(LoadingFields, Embeddings):
    """Jina embeddings, computed locally or by a server, as a LangChain `Embeddings`.

    Build it from a model name or path (loaded with `jinarag.Embedder.from_pretrained`), wrap
    an `Embedder` you already have, or give `base_url` (and `api_key`) to use the model of a
    `jinarag serve` server (`jinarag.inference.remote.RemoteEmbedder`). The loading options
    are fields named as in `jinarag.LoadOptions` (`device`, `dtype`, `max_length`, ...); an
    unknown keyword is an `InputError`, and so is one given with `base_url`. The names
    `HuggingFaceEmbeddings` users write are accepted too: `model_name` for `model`,
    `encode_kwargs={"normalize_embeddings": ..., "batch_size": ...}`, `show_progress`
    (`jinarag.langchain.conventions`); with `base_url`, `api_key` defaults to
    `$JINARAG_API_KEY`, read when the object is made. Documents go
    through the document side and queries through the query side, which differ for models
    with a query prefix (a server sends queries as they are). The async methods run the sync
    path in a worker thread (LangChain's default).

    Late chunking (the model reads a whole document; each chunk's vector is the mean of its
    own tokens' output states): `embed_late_chunks` embeds the consecutive chunks of one
    document, `late_chunk_documents` splits whole Documents and returns the chunk Documents
    with their vectors, for a vector store that takes vectors you computed (over a server,
    split with `chunk_by="sentences"`: the tokenizer stays on the server).

    jina-embeddings-v3's task adapters and Matryoshka dimensions: `task` (documents, default
    `retrieval.passage`), `query_task` (queries, default `retrieval.query`) and `dimensions`
    (the first that many, renormalised), checked against the model when it is made
    (`jinarag.inference.task_fields`; over a server, at the first call).

    Example:
        >>> from jinarag.langchain import JinaEmbeddings
        >>> embeddings = JinaEmbeddings("small")  # or model="small", or embedder=...
        >>> vectors = embeddings.embed_documents(["lift of a wing in a slipstream"])
        >>> query = embeddings.embed_query("what lifts a wing?")
        >>> served = JinaEmbeddings(base_url="http://127.0.0.1:8080")  # `jinarag serve`
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str | Path | None = None
    """Alias (`"small"`, `"base"`, ...), Hub id or local directory (or give `embedder`)."""
    embedder: Any = None  # an Embedder or RemoteEmbedder: typed loosely, so no torch to import
    """An already loaded embedder to use instead of loading `model`."""
    base_url: str | None = None
    """The root URL of a `jinarag serve` server whose model to use instead of loading one."""
    api_key: SecretStr | None = None
    """The server's API key; None: `$JINARAG_API_KEY`, read when the object is made."""
    batch_size: int = 32
    """Texts per forward pass (also accepted as `encode_kwargs={"batch_size": ...}`)."""
    normalize: bool = True
    """L2-normalise the vectors (cosine, dot product and Euclidean ranks then agree); also
    accepted as `encode_kwargs={"normalize_embeddings": ...}`."""
    show_progress: bool = False
    """Show a progress bar while `embed_documents` runs."""
    task: str | None = None
    """The task adapter of documents (jina-embeddings-v3); None: `retrieval.passage`."""
    query_task: str | None = None
    """The task adapter of queries (jina-embeddings-v3); None: `retrieval.query`."""
    dimensions: int | None = None
    """Matryoshka dimensions to keep (jina-embeddings-v3); None: all of them."""
    _fields: TaskFields = PrivateAttr(default_factory=TaskFields)

    def __init__(self, model: str | Path | None = None, **data: Any) -> None:
        # LangChain's names (model_name, encode_kwargs) and the key from the environment.
        data = embeddings_data({"model": model, **data} if model is not None else data)
        model = data.pop("model", None)
        check_fields("JinaEmbeddings", type(self), data)
        check_source("embedder", model, data)
        data = check_values(
            data, batch_size=positive_int, normalize=check_bool, show_progress=check_bool
        )
        fields = TaskFields.checked(*(data.get(name) for name in TASK_FIELDS))
        super().__init__(model=model, **data)
        # Loaded here, not in a pydantic validator, so our errors reach the caller unwrapped.
        self.embedder = load_or_use(
            "embedder",
            "JinaEmbeddings",
            self.model,
            self.embedder,
            options=load_options(self),
            base_url=self.base_url,
            api_key=secret_value(self.api_key),
        )
        self._fields = fields.for_model(self.embedder)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (document side) as lists of floats, one per text."""
        vectors = self.embedder.embed_documents(
            texts,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
            **self._fields.documents(),
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (query side) as a list of floats."""
        options = self._fields.queries()
        return self.embedder.embed_query(text, normalize=self.normalize, **options).tolist()

    def embed_late_chunks(self, chunks: list[str]) -> list[list[float]]:
        """Embed the consecutive chunks of one document by late chunking: the chunks are
        joined with a single space and read once, and each chunk's vector is the mean of its
        own tokens' output states (`jinarag.Embedder.embed_late_chunks`; a document longer
        than the model's `max_length` is read in overlapping windows). One list of floats per
        chunk, in order; an empty list or a blank chunk is an `InputError`."""
        vectors = self.embedder.embed_late_chunks(
            chunks,
            normalize=self.normalize,
            batch_size=self.batch_size,
            **self._fields.documents(),
        )
        return vectors.tolist()

    def late_chunk_documents(
        self,
        documents: Sequence[Document],
        *,
        chunk_by: str = "tokens",
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    ) -> tuple[list[Document], list[list[float]]]:
        """Split whole Documents into chunks and embed each chunk by late chunking.

        Each Document's text is split with `jinarag.retrieval.ingest.late.split_text` (about
        `chunk_tokens` tokens per chunk, cut at word starts; or one sentence per chunk with
        `chunk_by="sentences"`), then read whole; the documents' windows share batches.

        Returns:
            `(chunks, vectors)`: one new Document per chunk, in order, and its vector. A chunk
            Document has the chunk's text, the source's metadata plus `doc_id` (the source's
            `id`, or a hash of its text and metadata when it has none), `chunk` (its position
            in the source, from 0), `span_start` and `span_end` (its characters in the
            source's `page_content`), and the id `"{doc_id}#{chunk}"`: the ids, texts, metadata
            and vectors `jinarag.HybridIndex.add(..., chunking="late")` stores (the record
            layout of `jinarag.retrieval.layout`; its own bookkeeping keys are never shown).

        Raises:
            InputError: a non-Document item, a blank Document, a source whose metadata already
                has one of the chunk keys, a bad `chunk_by` or `chunk_tokens`.
        """
        chunk_by = check_choice("chunk_by", chunk_by, LATE_CHUNK_BY)
        chunk_tokens = positive_int("chunk_tokens", chunk_tokens)
        items = document_list(documents)
        for index, doc in enumerate(items):
            if not doc.page_content.strip():
                raise InputError(
                    f"documents[{index}] (id {doc.id!r}) has no text: there is nothing to "
                    "chunk; drop it"
                )
            taken = [key for key in CHUNK_KEYS if key in doc.metadata]
            if taken:
                raise InputError(
                    f"documents[{index}].metadata already has {taken[0]!r}, which "
                    f"late_chunk_documents sets on each chunk ({', '.join(CHUNK_KEYS)}); "
                    "rename that key"
                )
        split = late_chunk_many(
            self.embedder,
            [doc.page_content for doc in items],
            by=chunk_by,
            chunk_tokens=chunk_tokens,
            normalize=self.normalize,
            batch_size=self.batch_size,
            task=self.task,
            dimensions=self.dimensions,
        )
        chunks: list[Document] = []
        vectors: list[list[float]] = []
        for doc, pieces in zip(items, split, strict=True):
            doc_id = doc.id if doc.id is not None else content_id(doc.page_content, doc.metadata)
            for number, piece in enumerate(pieces):
                metadata = chunk_metadata(doc.metadata, doc_id, number, piece.span)
                chunks.append(
                    Document(page_content=piece.text, metadata=metadata, id=f"{doc_id}#{number}")
                )
                vectors.append(piece.vector.tolist())
        return chunks, vectors
