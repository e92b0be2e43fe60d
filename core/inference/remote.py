"""Embedders and rerankers that run on a ``jinarag serve`` server, called over HTTP.

:class:`RemoteEmbedder` and :class:`RemoteReranker` have the methods the framework adapters
call on :class:`~jinarag.Embedder` and :class:`~jinarag.Reranker`, with the same signatures
and float32 results, so an adapter given ``base_url=`` uses the server's model instead of
loading one. Vectors travel as base64 float32 bytes, so they are the server's bits exactly.

What differs from a local model:

- The server embeds every text as given, on its model's document side: ``embed_query`` and
  ``embed_queries`` send the text as is (no ``query_prefix`` is added). A model with task
  adapters (jina-embeddings-v3) gets Jina's ``task`` field: the query side's default
  (``retrieval.query``) or the task a call names; ``dimensions`` is sent as Jina's field,
  both checked first against what ``/v1/models`` says the model has.
- ``batch_size`` of a method is the forward-pass size, which the server decides: it is
  checked, not sent. Texts go in requests of at most the constructor's ``batch_size``.
- ``show_progress`` is a display option: accepted, and no bar is shown. ``stop`` is asked
  before each request.
- Options a server cannot honour are an :class:`~jinarag.errors.InputError`: raw logits
  (``activation=None``; ``/v1/rerank`` answers sigmoid relevance scores) and ``overlap`` of
  late chunking (the server reads long documents with its own overlap).

A request the server refuses (HTTP 4xx) is an :class:`~jinarag.errors.InputError` carrying the
server's ``detail``, and is never sent again. A 503 (the server's queue is full, or it is
shutting down; both say ``Retry-After``) and a connection dropped mid-request are tried again,
``retries`` times at most, after the ``Retry-After`` the server asked for, while the waits end
within ``timeout`` (:class:`~jinarag.inference.remote_wire.Wire`). A server that cannot be
reached, does not answer within ``timeout``, fails (5xx) or is still busy after the retries is
a :class:`~jinarag.errors.RemoteError` naming the URL, the tries and the fix. A URL is
always shown without its user info, query values or fragment, and the API key never
(:mod:`jinarag.redaction`).

Example:
    >>> from jinarag.inference.remote import RemoteEmbedder, RemoteReranker
    >>> embedder = RemoteEmbedder("http://127.0.0.1:8080")  # started with `jinarag serve`
    >>> embedder.embed(["a wing in a slipstream"]).shape
    (1, 512)
    >>> RemoteReranker("http://127.0.0.1:8080").score("flutter", ["swept wings", "heat"])
    array([0.93, 0.02], dtype=float32)
"""

from __future__ import annotations

import base64
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from jinarag.errors import InputError
from jinarag.inference.api import (
    EmbedCall,
    EmbeddingSides,
    LateChunkCall,
    RerankingSides,
    ScoreCall,
)
from jinarag.inference.remote_wire import (
    API_KEY_ENV,
    DEFAULT_RETRIES,
    Wire,
    by_index,
    check_stop,
    server_root,
)
from jinarag.redaction import redact_url
from jinarag.validation import check_bool, positive_int

__all__ = ["API_KEY_ENV", "RemoteEmbedder", "RemoteModel", "RemoteReranker", "connect"]

# A default server takes 262144 tokens per request: 32 texts of 8192 tokens.
DEFAULT_BATCH_SIZE = 32
DEFAULT_TIMEOUT = 60.0


class RemoteModel:
    """What both remote models share: the server, its key, the HTTP calls and their errors."""

    kind: ClassVar[str]  # the "kind" of /v1/models that this class uses
    flag: ClassVar[str]  # the `jinarag serve` option that loads such a model

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        """A client of the server at ``base_url``; nothing is sent before the first call.

        Args:
            base_url: The server's root, e.g. ``http://127.0.0.1:8080`` (a trailing ``/v1``
                is fine).
            model: The model name sent with each request (and looked for in ``/v1/models``);
                None: the one the server serves.
            api_key: Sent as ``Authorization: Bearer KEY``; None: ``$JINARAG_API_KEY`` if set.
            timeout: Seconds to wait for each request, and within which the waits before
                retries end; None waits as long as it takes.
            batch_size: Texts (or documents to rerank) per request at most.
            retries: Tries after the first for a request answered 503 (the server is busy
                or shutting down) or whose connection was dropped; 0: none.
        """
        self.base_url = server_root(base_url)
        if model is not None and not isinstance(model, str):
            raise InputError(f"model={model!r} must be the model's name (a string) or None")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout <= 0
        ):
            raise InputError(f"timeout={timeout!r} must be a positive number of seconds or None")
        self.model = model
        self.timeout = None if timeout is None else float(timeout)
        self.batch_size = positive_int("batch_size", batch_size)
        if api_key is not None and not isinstance(api_key, str):
            raise InputError(f"api_key must be a string or None, got {type(api_key).__name__}")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if key and not (key.isascii() and key.isprintable() and len(key.split()) == 1):
            given = "api_key" if api_key is not None else f"${API_KEY_ENV}"
            raise InputError(f"{given} (not shown) must be printable ASCII without spaces")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        retries = positive_int("retries", retries, allow_zero=True)
        self._wire = Wire(self.base_url, headers, self.timeout, retries)

    @property
    def shown_url(self) -> str:
        """The server's URL as messages and repr show it (no user info, query or fragment)."""
        return self._wire.shown_url

    def close(self) -> None:
        """Close the connections to the server (a later call opens new ones)."""
        self._wire.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.shown_url!r}, model={self.model!r})"

    @cached_property
    def info(self) -> dict[str, Any]:
        """This model's entry of ``GET /v1/models`` (``id``, ``dimensions``, ``max_length``,
        ``tasks``, ``dimensions_allowed``)."""
        answer = self._call("GET", "/v1/models")
        entries = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self._malformed("/v1/models", "no list of models in 'data'")
        served = [e for e in entries if e.get("kind") == self.kind]
        found = [e for e in served if self.model is None or self.model in _names(e)]
        if not found:
            names = [e.get("id") for e in served]
            if self.model is None:
                fix = f"start it with {self.flag} NAME"
            else:
                fix = f"pass model=None (the one it serves), or start it with {self.flag} NAME"
            named = f" named {self.model!r}" if self.model is not None else ""
            raise InputError(
                f"the jinarag server at {self.shown_url} serves no {self.kind} model{named} "
                f"(its {self.kind} models: {names}); {fix}"
            )
        return found[0]

    @property
    def name(self) -> str:
        """The served model's name, as the server reports it."""
        return str(self.info["id"])

    @property
    def max_length(self) -> int:
        """Tokens per input the served model reads (longer inputs are cut by the server)."""
        return int(self.info["max_length"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._wire.call(method, path, body)

    def _malformed(self, path: str, what: str) -> Exception:
        return self._wire.malformed(path, what)

    def _body(self, **fields: Any) -> dict[str, Any]:
        return {**fields, "model": self.model} if self.model is not None else fields

    def _batches(self, items: list[Any], stop: Callable[[], bool] | None) -> Iterable[list[Any]]:
        """``items`` in requests of at most ``batch_size``, asking ``stop`` before each."""
        for start in range(0, len(items), self.batch_size):
            check_stop(stop)
            yield items[start : start + self.batch_size]


class RemoteEmbedder(EmbeddingSides, RemoteModel):
    """The embedder a ``jinarag serve`` server runs, with :class:`~jinarag.Embedder`'s methods.

    Example:
        >>> embedder = RemoteEmbedder("http://127.0.0.1:8080", api_key="secret")
        >>> embedder.embed_query("what lifts a wing?").shape
        (512,)
    """

    kind: ClassVar[str] = "embedding"
    flag: ClassVar[str] = "--model"
    # The server embeds every text as given, on its model's document side.
    query_prefix = ""
    document_prefix = ""

    @property
    def dim(self) -> int:
        """The length of a vector."""
        return int(self.info["dimensions"])

    @property
    def tasks(self) -> tuple[str, ...]:
        """The served model's task adapters (``/v1/models``' ``tasks``); empty without."""
        return tuple(self.info.get("tasks") or ())

    @property
    def dimensions_allowed(self) -> tuple[int, ...]:
        """The Matryoshka dimensions the served model was trained to; empty without."""
        return tuple(self.info.get("dimensions_allowed") or ())

    def _check_task(self, call: EmbedCall | LateChunkCall) -> None:
        self._task_fields(call)

    def _task_fields(self, call: EmbedCall | LateChunkCall) -> dict[str, Any]:
        """Jina's ``task`` and ``dimensions`` for the call, checked against the served model
        (none asked on the document side: the server's defaults, and no ``/v1/models``)."""
        if call.task is None and call.dimensions is None and call.side == "document":
            return {}
        from jinarag.inference.matryoshka import task_options  # imports torch: when needed

        task, dimensions = task_options(self, call.task, call.dimensions, call.side)
        fields = {"task": task, "dimensions": dimensions}
        return {key: value for key, value in fields.items() if value is not None}

    def _embed(self, texts: list[str], call: EmbedCall) -> np.ndarray:
        """Embed texts on the server: float32, shape (len(texts), dim), in input order."""
        if call.overflow != "error":
            raise InputError(
                f"overflow={call.overflow!r} cannot be sent to a jinarag server: it refuses "
                "texts over its model's max_length when truncate=False. Use a local Embedder "
                "for pooled windows, or split long texts into chunks."
            )
        fields = self._task_fields(call)
        options = {"normalized": call.normalize, "truncate": call.truncate, **fields}
        if not texts:
            return np.zeros((0, fields.get("dimensions", self.dim)), dtype=np.float32)
        rows = [self._embeddings(batch, **options) for batch in self._batches(texts, call.stop)]
        return np.concatenate(rows)

    def _late_chunks(
        self, documents: list[list[str]], names: list[str], call: LateChunkCall
    ) -> list[np.ndarray]:
        """Late chunking on the server: one request per document, in order (``names`` are
        for a local model's errors; the server checks each document itself)."""
        check_bool("show_progress", call.show_progress)
        if call.overlap is not None:
            raise InputError(
                f"overlap={call.overlap!r} cannot be sent to a jinarag server: it reads long "
                "documents in windows with its own overlap; leave overlap=None, or use a local "
                "Embedder"
            )
        options = {
            "normalized": call.normalize,
            "truncate": call.long_late_chunking,
            "late_chunking": True,
            **self._task_fields(call),
        }
        vectors = []
        for chunks in documents:
            check_stop(call.stop)
            vectors.append(self._embeddings(chunks, **options))
        return vectors

    def _embeddings(self, texts: list[str], **options: Any) -> np.ndarray:
        """One ``POST /v1/embeddings``: the vectors of ``texts``, in order."""
        body = self._body(input=texts, embedding_type="base64", **options)
        data = self._call("POST", "/v1/embeddings", body)
        rows = by_index(data.get("data") if isinstance(data, dict) else None, len(texts))
        if rows is None:
            raise self._malformed("/v1/embeddings", f"no {len(texts)} indexed embeddings")
        try:
            vectors = [np.frombuffer(base64.b64decode(r["embedding"]), "<f4") for r in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._malformed("/v1/embeddings", "embeddings that are not base64") from exc
        if len({len(v) for v in vectors}) != 1:
            raise self._malformed("/v1/embeddings", "embeddings of different lengths")
        return np.stack(vectors).astype(np.float32)


class RemoteReranker(RerankingSides, RemoteModel):
    """The reranker a ``jinarag serve`` server runs, with :class:`~jinarag.Reranker`'s methods.

    Scores are the server's ``relevance_score`` (a sigmoid in (0, 1)); raw logits
    (``activation=None``) are not available over the API.

    Example:
        >>> reranker = RemoteReranker("http://127.0.0.1:8080")
        >>> reranker.rank("wing flutter", ["heat transfer", "flutter of swept wings"], top_n=1)
        [RankedDocument(index=1, score=0.93, text='flutter of swept wings')]
    """

    kind: ClassVar[str] = "rerank"
    flag: ClassVar[str] = "--reranker"

    def _score_pairs(self, pairs: list[tuple[str, str]], call: ScoreCall) -> np.ndarray:
        """The pairs grouped by query, each query's documents in ``/v1/rerank`` requests."""
        if call.activation is None:
            raise InputError(
                "activation=None (raw logits) is not available from a jinarag server: "
                "/v1/rerank answers sigmoid relevance scores; use activation='sigmoid', or a "
                "local Reranker for logits"
            )
        by_query: dict[str, list[int]] = {}
        for position, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(position)
        scores = np.zeros(len(pairs), dtype=np.float32)
        for query, positions in by_query.items():
            for batch in self._batches(positions, call.stop):
                documents = [pairs[p][1] for p in batch]
                scores[batch] = self._relevance(query, documents, call.truncate)
        return scores

    def _relevance(self, query: str, documents: list[str], truncate: bool) -> np.ndarray:
        """One ``POST /v1/rerank``: each document's relevance score, in input order."""
        body = self._body(
            query=query, documents=documents, return_documents=False, truncate=truncate
        )
        data = self._call("POST", "/v1/rerank", body)
        rows = by_index(data.get("results") if isinstance(data, dict) else None, len(documents))
        scores = [row.get("relevance_score") for row in rows] if rows is not None else []
        if len(scores) != len(documents) or not all(
            isinstance(score, (int, float)) for score in scores
        ):
            raise self._malformed("/v1/rerank", f"no {len(documents)} indexed scores")
        return np.array(scores, dtype=np.float32)


def _names(entry: dict[str, Any]) -> list[Any]:
    """The names a ``/v1/models`` entry answers to: its id and its aliases."""
    aliases = entry.get("aliases")
    return [entry.get("id"), *(aliases if isinstance(aliases, list) else ())]


def connect(
    kind: str,
    owner: str,
    base_url: str,
    *,
    api_key: str | None = None,
    local: Mapping[str, Any] | None = None,
) -> RemoteEmbedder | RemoteReranker:
    """The remote model an adapter uses when it got ``base_url``: a ``RemoteEmbedder``
    (``kind="embedder"``) or a ``RemoteReranker`` (``kind="reranker"``).

    ``local`` holds whatever local loading arguments ``owner`` was also given (a model name,
    a loaded model, loading options that differ from their defaults): the server loads its
    own model, so any of them is an InputError naming it and ``base_url``.
    """
    for arg, value in (local if local is not None else {}).items():
        raise InputError(
            f"{owner} got base_url={redact_url(str(base_url))!r} and {arg}={value!r:.80}: "
            "base_url and local loading options exclude each other (the server loads its model "
            "with its own); "
            f"drop {arg} to use the server, or base_url to load the model here"
        )
    remote = {"embedder": RemoteEmbedder, "reranker": RemoteReranker}[kind]
    return remote(base_url, api_key=api_key)
