"""The HTTP app behind `jinarag serve`: the request and response shapes of Jina's API.

``POST /v1/embeddings`` and ``POST /v1/rerank`` accept the bodies Jina's hosted API accepts,
so a client written for the API can point at ``http://127.0.0.1:8080`` instead. Needs the
``server`` extra (FastAPI and uvicorn). The command's options live in :mod:`jinarag.cli.serve`.

With ``"late_chunking": true`` the ``input`` of ``/v1/embeddings`` is the chunks of one
document, read as one input (Jina's semantics; :meth:`Embedder.embed_late_chunks`).

Every request is checked against :class:`~jinarag.serving.limits.ServerLimits` before the work
it would cause, runs its model call in a thread that stops between batches when the client
disconnects or the server shuts down, and every refusal is a 4xx JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jinarag.errors import InputError, JinaragError

try:
    import fastapi
    from fastapi import Request
    from fastapi.responses import Response
except ImportError as exc:  # the one dependency a user may lack: name the extra that has it
    raise ImportError(
        "jinarag serve needs FastAPI and uvicorn: pip install 'jinarag[server]'"
    ) from exc

from jinarag.inference.embedder import Embedder
from jinarag.inference.late_chunking import check_chunks
from jinarag.inference.pretrained import Cancelled, PretrainedModel
from jinarag.inference.reranker import Reranker
from jinarag.models.tokenization import Encoded
from jinarag.serving.guard import Guard, run_stoppable
from jinarag.serving.limits import (
    DEFAULT_CHARS_PER_TOKEN,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUTS,
    DEFAULT_MAX_REQUEST_TOKENS,
    RequestTooLargeError,
    ServerLimits,
)
from jinarag.serving.requests import BodyError, EmbeddingsRequest, RerankRequest, parse_body
from jinarag.validation import check_text, check_texts

__all__ = [
    "EmbeddingsRequest",
    "RerankRequest",
    "create_app",
    "display_name",
    "require_fastapi",
    "status_for",
]

EMBEDDING_FORMATS = ("float", "base64")
# A request with more texts than this is followed by gc.collect() and malloc_trim (its response
# and activations are large even when its body is small); see guard.release_memory.
RELEASE_ABOVE_TEXTS = 256
CLIENT_CLOSED_REQUEST = 499  # nginx's code: the client left, nobody reads the answer
# Texts tokenised at a time while counting a request's tokens: one over the limit is refused
# after about max_request_tokens tokens of work, not after all of it.
COUNT_CHUNK = 64
# Texts per model call: a model call tokenises all its texts at once, which cannot stop
# halfway, so a request is run in calls of this many to stop soon after a disconnect.
WORK_CHUNK = 256


def require_fastapi() -> Any:
    """The fastapi module (importing this module already raised ImportError naming the extra
    when it is missing)."""
    return fastapi


def display_name(model: PretrainedModel) -> str:
    """The name responses show: the Hub id a model was loaded by, or a local directory's final
    name. Never the directory's path: it would tell every client about the server's disks.
    (``model.name`` itself stays the path; the hybrid index stores it.)"""
    local = model.name == str(model.source) or Path(model.name).is_absolute()
    return Path(model.name).name if local else model.name


def status_for(exc: JinaragError) -> int:
    """The HTTP status of an error: 413 for a request over a limit, 400 for a body that is not
    JSON, 422 for a body of the wrong shape, 400 for any other JinaragError."""
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, BodyError):
        return exc.status_code
    return 400


def create_app(
    embedder: Embedder | None,
    reranker: Reranker | None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    chars_per_token: int = DEFAULT_CHARS_PER_TOKEN,
    max_request_tokens: int = DEFAULT_MAX_REQUEST_TOKENS,
) -> Any:
    """A FastAPI app serving the given models (either may be None: its route then answers 404).

    The keywords are the limits of :class:`~jinarag.serving.limits.ServerLimits`. Setting the
    event ``app.state.shutting_down`` stops running model calls at their next batch (they then
    answer 503); ``jinarag serve`` sets it on SIGTERM and Ctrl-C.

    Example:
        >>> app = create_app(Embedder.from_pretrained("small"), None, max_inputs=256)
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    limits = ServerLimits(
        max_body_bytes=max_body_bytes,
        max_inputs=max_inputs,
        chars_per_token=chars_per_token,
        max_request_tokens=max_request_tokens,
    )
    app = fastapi.FastAPI(title="jinarag", description="Jina embeddings and reranking, local.")
    app.state.limits = limits
    app.state.shutting_down = threading.Event()
    app.add_middleware(Guard, limits=limits)

    def loaded(model: Any, what: str) -> Any:
        if model is None:
            raise fastapi.HTTPException(
                status_code=404, detail=f"no {what} is loaded; start the server with --{what} NAME"
            )
        return model

    def answer(status: int, content: dict[str, Any]) -> Any:
        # ensure_ascii: an error may quote a bad value, and escaped it always encodes.
        return Response(json.dumps(content), status_code=status, media_type="application/json")

    @app.exception_handler(JinaragError)
    async def jinarag_error(_request: Any, exc: JinaragError) -> Any:
        return answer(status_for(exc), {"detail": str(exc)})

    async def respond(request: Any, work: Callable[[Callable[[], bool]], bytes]) -> Any:
        """Run ``work(should_stop)`` off the event loop; its JSON bytes are the answer."""
        try:
            content = await run_stoppable(
                work,
                is_disconnected=request.is_disconnected,
                shutting_down=app.state.shutting_down,
            )
        except Cancelled:
            if app.state.shutting_down.is_set():
                return answer(
                    503, {"detail": "the server is shutting down; send the request again"}
                )
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return Response(content, media_type="application/json")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        ready = [m for m in (embedder, reranker) if m is not None]
        data = [
            {
                "id": display_name(m),
                "object": "model",
                "owned_by": "jinarag",
                "kind": "embedding" if isinstance(m, Embedder) else "rerank",
                "dimensions": m.dim if isinstance(m, Embedder) else None,
                "max_length": m.max_length,
            }
            for m in ready
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/embeddings", openapi_extra=_schema(EmbeddingsRequest))
    async def embeddings(request: Request) -> Any:
        model: Embedder = loaded(embedder, "embedder")
        body = parse_body(await request.body(), EmbeddingsRequest)
        encoding = _embedding_format(body)
        if body.dimensions is not None and body.dimensions != model.dim:
            raise InputError(
                f"dimensions={body.dimensions!r} is not supported: {display_name(model)} "
                f"returns {model.dim} dimensions; leave dimensions out"
            )
        texts = _texts("input", body.input, limits, single=True)
        if len(texts) > RELEASE_ABOVE_TEXTS:
            request.state.release_memory = True
        if body.late_chunking:
            chunks = check_chunks(texts, "input")

            def late_work(should_stop: Callable[[], bool]) -> bytes:
                tokens = _count_late_tokens(
                    chunks, model, limits, truncate=body.truncate, should_stop=should_stop
                )
                rows = model.embed_late_chunks_many(
                    [chunks],
                    normalize=body.normalized,
                    # truncate=true: a document over max_length is read in overlapping
                    # windows (long late chunking); nothing of it is cut.
                    long_late_chunking=body.truncate,
                    stop=should_stop,
                )[0]
                return _embeddings_answer(model, rows, encoding, tokens)

            return await respond(request, late_work)

        def work(should_stop: Callable[[], bool]) -> bytes:
            cut = limits.cut("input", texts, model.max_length, truncate=body.truncate)
            tokens = _count_tokens(
                "input",
                cut,
                lambda chunk: model.tokenizer.encode(chunk, max_length=model.max_length),
                limits,
                model.max_length,
                truncate=body.truncate,
                should_stop=should_stop,
            )
            rows = [
                row
                for chunk in _chunks(cut)
                for row in model.embed(
                    chunk, normalize=body.normalized, truncate=body.truncate, stop=should_stop
                )
            ]
            return _embeddings_answer(model, rows, encoding, tokens)

        return await respond(request, work)

    @app.post("/v1/rerank", openapi_extra=_schema(RerankRequest))
    async def rerank(request: Request) -> Any:
        model: Reranker = loaded(reranker, "reranker")
        body = parse_body(await request.body(), RerankRequest)
        query = check_text(body.query, "query")
        documents = _texts("documents", body.documents, limits, single=False)
        longest = limits.max_chars(model.max_length)
        if len(query) > longest:
            raise InputError(
                f"query has {len(query)} characters, more than the {longest} this server "
                f"tokenises for max_length={model.max_length} tokens; a query is never cut, "
                "so shorten it"
            )
        if len(documents) > RELEASE_ABOVE_TEXTS:
            request.state.release_memory = True

        def work(should_stop: Callable[[], bool]) -> bytes:
            cut = limits.cut("documents", documents, model.max_length, truncate=body.truncate)
            tokens = _count_tokens(
                "documents",
                cut,
                lambda chunk: model.tokenizer.encode_pairs(
                    query, chunk, max_length=model.max_length
                ),
                limits,
                model.max_length,
                truncate=body.truncate,
                should_stop=should_stop,
            )
            scores = np.concatenate(
                [
                    model.score(query, chunk, truncate=body.truncate, stop=should_stop)
                    for chunk in _chunks(cut)
                ]
            )
            # Reranker.rank's order: best first, ties in input order, at most top_n.
            order = np.argsort(-scores, kind="stable")[: body.top_n]
            results = []
            for index in order.tolist():
                result: dict[str, Any] = {"index": index, "relevance_score": float(scores[index])}
                if body.return_documents:
                    result["document"] = {"text": documents[index]}  # as sent, uncut
                results.append(result)
            usage = {"total_tokens": tokens, "prompt_tokens": tokens}
            payload = {"model": display_name(model), "results": results, "usage": usage}
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")

        return await respond(request, work)

    return app


def _schema(shape: Any) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself (see requests.py)."""
    schema = shape.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _texts(field: str, value: Any, limits: ServerLimits, *, single: bool) -> list[str]:
    """``value`` as a checked list of texts: the count limit first (cheap), then each text."""
    if single and isinstance(value, str):
        return [check_text(value, field)]
    if not isinstance(value, list):
        kind = "a string or a list of strings" if single else "a list of strings"
        raise InputError(
            f"{field} must be {kind}, got {type(value).__name__} {value!r:.60}; "
            f'send e.g. "{field}": ["a text", "another"]'
        )
    limits.check_count(field, len(value))
    if not value:
        raise InputError(f"{field} is an empty list; send at least one text")
    return check_texts(value, field)


def _chunks(texts: list[str]) -> list[list[str]]:
    return [texts[start : start + WORK_CHUNK] for start in range(0, len(texts), WORK_CHUNK)]


def _count_tokens(
    field: str,
    texts: list[str],
    encode: Callable[[list[str]], Encoded],
    limits: ServerLimits,
    max_length: int,
    *,
    truncate: bool,
    should_stop: Callable[[], bool],
) -> int:
    """The tokens the model will read for ``texts`` (``encode`` cuts each at ``max_length``),
    counted a chunk at a time so that a request over the limit is refused early; with
    ``truncate=False``, an InputError naming the first text over ``max_length``."""
    total = 0
    for start in range(0, len(texts), COUNT_CHUNK):
        if should_stop():
            raise Cancelled(f"stopped while counting the tokens of {field}")
        encoded = encode(texts[start : start + COUNT_CHUNK])
        if not truncate and encoded.truncated:
            raise InputError(
                f"{field}[{start + encoded.truncated[0]}] has more than max_length={max_length} "
                "tokens; with truncate=false it is refused: shorten or split it, or send "
                "truncate=true to have it cut"
            )
        total += sum(len(ids) for ids in encoded.input_ids)
        if total > limits.max_request_tokens:
            complete = start + COUNT_CHUNK >= len(texts)
            raise limits.tokens_too_large(total, max_length, complete=complete)
    return total


def _count_late_tokens(
    chunks: list[str],
    model: Embedder,
    limits: ServerLimits,
    *,
    truncate: bool,
    should_stop: Callable[[], bool],
) -> int:
    """The tokens of ``chunks`` joined and read as one input (special tokens once), the usage
    of a late chunking request. Counted a chunk group at a time first, so a request over the
    limit is refused early; with ``truncate=False``, an InputError when the joined input is
    over ``max_length`` (it would need several windows)."""
    max_length = model.max_length
    characters = sum(len(chunk) for chunk in chunks) + len(chunks) - 1
    if not truncate and characters > limits.max_chars(max_length):
        raise InputError(
            f"input joins to {characters} characters, more than the "
            f"{limits.max_chars(max_length)} this server tokenises for max_length={max_length} "
            "tokens; with truncate=false and late_chunking it is refused: send fewer or shorter "
            "chunks, or truncate=true to read the document in overlapping windows"
        )
    total = model.tokenizer.count_tokens("")
    for start in range(0, len(chunks), COUNT_CHUNK):
        if should_stop():
            raise Cancelled("stopped while counting the tokens of input")
        for index, chunk in enumerate(chunks[start : start + COUNT_CHUNK], start):
            own = len(model.tokenizer.token_offsets(chunk))
            if own == 0:
                raise InputError(
                    f"input[{index}] ({chunk[:40]!r}) has no token of its own: the tokenizer "
                    "reads nothing there; drop it, or join it to its neighbour"
                )
            total += own
        if total > limits.max_request_tokens:
            raise _late_too_large(total, limits, complete=start + COUNT_CHUNK >= len(chunks))
    # The chunks alone are counted above; the joined text, as the model reads it, decides.
    tokens = model.tokenizer.count_tokens(" ".join(chunks))
    if not truncate and tokens > max_length:
        raise InputError(
            f"input joins to {tokens} tokens, more than max_length={max_length}; with "
            "truncate=false and late_chunking it is refused: send fewer or shorter chunks, or "
            "truncate=true to read the document in overlapping windows (long late chunking)"
        )
    if tokens > limits.max_request_tokens:
        raise _late_too_large(tokens, limits, complete=True)
    return tokens


def _late_too_large(tokens: int, limits: ServerLimits, *, complete: bool) -> RequestTooLargeError:
    amount = f"{tokens} tokens" if complete else f"more than {tokens} tokens"
    return RequestTooLargeError(
        f"the request has {amount} (its chunks read as one input, late chunking), more than "
        f"this server's limit of {limits.max_request_tokens} per request; send a shorter "
        "document, or start the server with a larger --max-request-tokens"
    )


def _embeddings_answer(model: Embedder, rows: Any, encoding: str, tokens: int) -> bytes:
    """The JSON body of an embeddings answer: one item per row, in order, and the usage."""
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(row, encoding)}
        for i, row in enumerate(rows)
    ]
    usage = {"total_tokens": tokens, "prompt_tokens": tokens}
    payload = {"model": display_name(model), "object": "list", "data": data}
    return json.dumps({**payload, "usage": usage}).encode("utf-8")


def _embedding_format(body: EmbeddingsRequest) -> str:
    """The format asked for: Jina's ``embedding_type`` or OpenAI's ``encoding_format``."""
    given = {
        name: value
        for name, value in (
            ("embedding_type", body.embedding_type),
            ("encoding_format", body.encoding_format),
        )
        if value is not None
    }
    if len(set(given.values())) > 1:
        raise InputError(
            f"embedding_type={body.embedding_type!r} and encoding_format="
            f"{body.encoding_format!r} disagree; send one of them"
        )
    for name, value in given.items():
        if value not in EMBEDDING_FORMATS:
            raise InputError(
                f"{name}={value!r} is not supported; use 'float' or 'base64' (little-endian "
                "float32)"
            )
        return value
    return "float"


def _vector(row: Any, encoding: str) -> Any:
    if encoding == "base64":  # OpenAI's format: the float32 bytes, little-endian
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()
