"""The HTTP app behind ``jinarag serve``: Jina's, OpenAI's and TEI's request shapes.

Routes (docs/server.md has the fields):

- ``POST /v1/embeddings``: Jina's body, and OpenAI's (``encoding_format``), one route.
- ``POST /v1/rerank``: Jina's body.
- ``POST /embed``, ``POST /rerank``, ``GET /info``: text-embeddings-inference's (:mod:`.tei`).
- ``GET /v1/models``, ``GET /health``, ``GET /ready``, ``GET /metrics`` (Prometheus).

Every request is checked against :class:`~jinarag.serving.limits.ServerLimits` before the work
it would cause, tokenised in its own thread, and queued for its model's
:class:`~jinarag.serving.batcher.Batcher`, which merges the requests waiting for one model
into the engine's batches. Every refusal is a 4xx (or 503/504) JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from jinarag.errors import Cancelled, InputError, JinaragError

try:
    import fastapi
    from fastapi import Request
    from fastapi.responses import Response

    from jinarag.serving.metrics import CONTENT_TYPE_LATEST, Metrics
except ImportError as exc:  # the dependencies a user may lack: name the extra that has them
    raise ImportError(
        "jinarag serve needs FastAPI, uvicorn and prometheus-client: pip install 'jinarag[server]'"
    ) from exc

from jinarag.inference.api import best_first, sigmoid
from jinarag.inference.heads import l2_normalize
from jinarag.inference.late_chunking import check_chunks
from jinarag.inference.matryoshka import matryoshka
from jinarag.inference.protocols import PairScorer, TokenEmbedder, require
from jinarag.serving.batcher import Batcher, Job, QueueFullError, RequestTimeoutError
from jinarag.serving.guard import ApiKey, Guard, error_body, run_stoppable
from jinarag.serving.limits import (
    DEFAULT_CHARS_PER_TOKEN,
    DEFAULT_CPU_PASS_TOKENS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUTS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_REQUEST_TOKENS,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_REQUEST_TIMEOUT,
    RequestTooLargeError,
    ServerLimits,
)
from jinarag.serving.registry import (
    ModelNotServedError,
    Registry,
    ServedModel,
    display_name,
    kind_of,
)
from jinarag.serving.requests import (
    BodyError,
    EmbeddingsRequest,
    RerankRequest,
    openapi_body,
    read_body,
    texts_of,
)
from jinarag.serving.vectors import ENCODINGS, OPENAI_ENCODINGS, dumps, encode_vectors
from jinarag.serving.work import Work, embedding_options, late_job, pairs_job, texts_job
from jinarag.validation import check_text

__all__ = [
    "EmbeddingsRequest",
    "RerankRequest",
    "create_app",
    "display_name",
    "status_for",
]

# A request with more texts than this is followed by gc.collect() and malloc_trim (its response
# and activations are large even when its body is small); see guard.release_memory.
RELEASE_ABOVE_TEXTS = 256
# Answers of more rows than this are written to JSON in a thread, off the event loop.
FINISH_INLINE_ROWS = 64
CLIENT_CLOSED_REQUEST = 499  # nginx's code: the client left, nobody reads the answer
RETRY_AFTER_SECONDS = 1

Model = TokenEmbedder | PairScorer
Models = Model | Mapping[str, Model] | Sequence[Model] | None


def status_for(exc: JinaragError) -> int:
    """The HTTP status of an error: 413 over a limit, 400 not JSON, 422 the wrong shape, 404 a
    model not served, 503 a full queue, 504 past the request timeout, else 400."""
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, BodyError):
        return exc.status_code
    if isinstance(exc, ModelNotServedError):
        return 404
    if isinstance(exc, QueueFullError):
        return 503
    if isinstance(exc, RequestTimeoutError):
        return 504
    return 400


def _served(models: Models) -> list[ServedModel]:
    """Models as given to create_app: one, a list, or a mapping of name to model."""
    if models is None:
        return []
    if kind_of(models) is not None:
        return [ServedModel.named(models)]
    if isinstance(models, Mapping):
        return [ServedModel.named(model, name) for name, model in models.items()]
    return [ServedModel.named(model) for model in models]


def create_app(
    embedder: Models = None,
    reranker: Models = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    chars_per_token: int = DEFAULT_CHARS_PER_TOKEN,
    max_request_tokens: int = DEFAULT_MAX_REQUEST_TOKENS,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_queue: int = DEFAULT_MAX_QUEUE,
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    cpu_pass_tokens: int = DEFAULT_CPU_PASS_TOKENS,
) -> Any:
    """A FastAPI app serving the given models.

    ``embedder`` and ``reranker`` are each a model, a list of models, a mapping of name to
    model (the name a request may use besides the model's own), or None (their routes then
    answer 404). A model that is neither an embedder nor a reranker (the protocols of
    :mod:`jinarag.inference.protocols`) is an InputError. The first of each kind answers
    requests that name no model. The limits are
    :class:`~jinarag.serving.limits.ServerLimits`' (``cpu_pass_tokens``: tokens of one forward
    pass on a CPU); ``max_wait_ms`` and ``max_queue`` the batchers'; ``request_timeout``
    (seconds, None: none) gives a request up with 504; ``api_key`` requires
    ``Authorization: Bearer KEY`` on every route but ``/health`` and ``/ready``;
    ``cors_origins`` allows browsers on those origins (none by default).

    Setting the event ``app.state.shutting_down`` makes the app refuse new requests with 503
    while the running ones finish; ``jinarag serve`` sets it on SIGTERM and Ctrl-C.

    Example:
        >>> app = create_app({"small": Embedder.from_pretrained("small")}, None)
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    limits = ServerLimits(
        max_body_bytes=max_body_bytes,
        max_inputs=max_inputs,
        chars_per_token=chars_per_token,
        max_request_tokens=max_request_tokens,
        cpu_pass_tokens=cpu_pass_tokens,
    )
    registry = Registry(_served(embedder) + _served(reranker))
    metrics = Metrics()
    batchers: dict[int, Batcher] = {}
    for entry in registry.served:
        batcher = Batcher(
            entry.model,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            observe=metrics.observer(entry.names[0]),
            cpu_pass_tokens=limits.cpu_pass_tokens,
        )
        metrics.track_queue(entry.names[0], lambda b=batcher: b.depth)
        batchers[id(entry)] = batcher
    shutting_down = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        yield
        shutting_down.set()
        for batcher in batchers.values():
            batcher.close()

    app = fastapi.FastAPI(
        title="jinarag",
        description="Jina embeddings and reranking, local.",
        lifespan=lifespan,
    )
    app.state.limits = limits
    app.state.registry = registry
    app.state.shutting_down = shutting_down
    app.state.batchers = {entry.names[0]: batchers[id(entry)] for entry in registry.served}
    key = ApiKey(api_key) if api_key else None  # its repr does not show it
    app.add_middleware(
        Guard, limits=limits, metrics=metrics, api_key=key, shutting_down=shutting_down
    )
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )

    def answer(status: int, content: Any, headers: dict[str, str] | None = None) -> Any:
        # ensure_ascii: an error may quote a bad value, and escaped it always encodes.
        return Response(
            json.dumps(content), status_code=status, media_type="application/json", headers=headers
        )

    @app.exception_handler(JinaragError)
    async def jinarag_error(request: Any, exc: JinaragError) -> Any:
        status = status_for(exc)
        content = error_body(request.url.path, status, str(exc))
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
        return answer(status, content, headers)

    async def respond(
        request: Any,
        entry: ServedModel,
        prepare: Callable[[Work], Job],
        finish: Callable[[np.ndarray, int], bytes],
    ) -> Any:
        """``prepare`` the request's job in its own thread, queue it for its model, await its
        rows on the event loop, and ``finish`` them into the JSON answer (in a thread when
        large). The client leaving gives the request up (499, read by nobody)."""
        deadline = time.monotonic() + request_timeout if request_timeout is not None else None
        batcher = batchers[id(entry)]

        def run(should_stop: Callable[[], bool]) -> Job:
            return prepare(Work(entry.model, limits, should_stop))

        try:
            job = await run_stoppable(run, is_disconnected=request.is_disconnected)
            rows = await batcher.submit(job).answer(request.is_disconnected, deadline)
        except Cancelled:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        if len(rows) > FINISH_INLINE_ROWS:
            content = await asyncio.to_thread(finish, rows, job.tokens)
        else:
            content = finish(rows, job.tokens)
        return Response(content, media_type="application/json")

    @app.get("/health")
    def health() -> dict[str, str]:
        """Alive: answers as long as the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> Any:
        """Ready for work: models loaded and not shutting down (503 otherwise)."""
        if shutting_down.is_set():
            return answer(503, {"status": "shutting down"})
        return {"status": "ready", "models": [entry.names[0] for entry in registry.served]}

    @app.get("/metrics")
    def prometheus() -> Any:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [entry.info() for entry in registry.served]}

    @app.post("/v1/embeddings", openapi_extra=openapi_body(EmbeddingsRequest))
    async def embeddings(request: Request) -> Any:
        body = await read_body(request, EmbeddingsRequest)
        entry, name = registry.find("embedder", body.model)
        model = require(entry.model, TokenEmbedder, "POST /v1/embeddings")
        encoding = _embedding_format(body)
        task, dimensions = embedding_options(model, name, body.task, body.dimensions)
        texts = texts_of("input", body.input, limits, single=True)
        if len(texts) > RELEASE_ABOVE_TEXTS:
            request.state.release_memory = True

        def prepare(work: Work) -> Job:
            if body.late_chunking:
                # truncate=true: a document over max_length is read in overlapping windows
                # (long late chunking); nothing of it is cut.
                chunks = check_chunks(texts, "input")
                return late_job(work, chunks, truncate=body.truncate, task=task)
            return texts_job(work, "input", texts, truncate=body.truncate, task=task)

        def finish(rows: np.ndarray, tokens: int) -> bytes:
            # Rows come unnormalised and whole, so requests of either kind share engine calls;
            # Matryoshka cuts them first, then normalises.
            rows = matryoshka(rows, dimensions, normalize=False)
            vectors = encode_vectors(l2_normalize(rows) if body.normalized else rows, encoding)
            data = [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(vectors)
            ]
            usage = {"total_tokens": tokens, "prompt_tokens": tokens}
            return dumps({"model": name, "object": "list", "data": data, "usage": usage})

        return await respond(request, entry, prepare, finish)

    @app.post("/v1/rerank", openapi_extra=openapi_body(RerankRequest))
    async def rerank(request: Request) -> Any:
        body = await read_body(request, RerankRequest)
        entry, name = registry.find("reranker", body.model)
        query = check_text(body.query, "query")
        documents = texts_of("documents", body.documents, limits, single=False)
        if len(documents) > RELEASE_ABOVE_TEXTS:
            request.state.release_memory = True

        def prepare(work: Work) -> Job:
            return pairs_job(work, "documents", query, documents, truncate=body.truncate)

        def finish(logits: np.ndarray, tokens: int) -> bytes:
            scores = sigmoid(logits)
            results = []
            for index in best_first(scores, body.top_n):
                result: dict[str, Any] = {"index": index, "relevance_score": float(scores[index])}
                if body.return_documents:
                    result["document"] = {"text": documents[index]}  # as sent, uncut
                results.append(result)
            usage = {"total_tokens": tokens, "prompt_tokens": tokens}
            payload = {"model": name, "results": results, "usage": usage}
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")

        return await respond(request, entry, prepare, finish)

    from jinarag.serving.tei import add_tei_routes

    add_tei_routes(app, registry, limits, respond)
    return app


def _embedding_format(body: EmbeddingsRequest) -> str:
    """The format asked for: Jina's ``embedding_type`` (or its older ``encoding_type``) or
    OpenAI's ``encoding_format``; they must agree when several are sent."""
    given = {
        name: value
        for name, value in (
            ("embedding_type", body.embedding_type),
            ("encoding_type", body.encoding_type),
            ("encoding_format", body.encoding_format),
        )
        if value is not None
    }
    if len(set(given.values())) > 1:
        sent = ", ".join(f"{name}={value!r}" for name, value in given.items())
        raise InputError(f"{sent} disagree; send one of them")
    for name, value in given.items():
        choices = OPENAI_ENCODINGS if name == "encoding_format" else ENCODINGS
        if value not in choices:
            raise InputError(
                f"{name}={value!r} is not supported; use one of {', '.join(choices)} (base64: "
                "little-endian float32; binary/ubinary: sign bits packed into int8/uint8)"
            )
        return value
    return "float"
