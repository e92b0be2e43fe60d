"""What wraps every request: the API key, the refusal of new requests while shutting down, the
body-size cap, the last-resort 500, metrics, memory given back to the OS after large requests,
and model work run in a thread that stops when nobody waits for it.

``Guard`` is a plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which would
buffer responses and hide client disconnects from the routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import hmac
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

from jinarag.serving.limits import ServerLimits
from jinarag.serving.metrics import Metrics

__all__ = ["TEI_ROUTES", "ApiKey", "Guard", "error_body", "release_memory", "run_stoppable"]

logger = logging.getLogger("jinarag.serving")

T = TypeVar("T")
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A body above this many bytes, or a request a route marks with request.state.release_memory,
# is followed by gc.collect() and malloc_trim(0): without them glibc keeps the freed peak.
RELEASE_ABOVE_BYTES = 1024 * 1024
# Routes open without the API key (probes of orchestrators and load balancers).
OPEN_ROUTES = frozenset({"/health", "/ready"})
# Routes counted under their own name in the metrics; any other path counts as "other", so a
# scan of random paths cannot grow the metrics without bound.
KNOWN_ROUTES = OPEN_ROUTES | {
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/models",
    "/",
    "/embed",
    "/rerank",
    "/info",
    "/metrics",
}
# An oversize body is read and dropped up to this size, so the client (which sends the whole
# body before it reads an answer) gets the 413 instead of a reset connection.
DRAIN_AT_MOST_BYTES = 64 * 1024 * 1024


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Free what a large request left behind and hand the freed pages back to the OS."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


TEI_ROUTES = frozenset({"/", "/embed", "/rerank", "/info"})
# OpenAI's error types by status, which the openai client shows with the message.
_OPENAI_TYPES = {401: "authentication_error", 404: "not_found_error", 503: "server_error"}


def error_body(path: str, status: int, detail: str) -> dict[str, Any]:
    """Every refusal's JSON: ``detail`` (what Jina's clients read) plus, on the TEI routes,
    TEI's ``error`` and ``error_type``, and elsewhere OpenAI's ``error`` object, so each client
    family shows the reason in its own exception."""
    if path in TEI_ROUTES:
        kind = "Validation" if status < 500 else "Overloaded"
        return {"detail": detail, "error": detail, "error_type": kind}
    kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {
        "detail": detail,
        "error": {"message": detail, "type": kind, "param": None, "code": None},
    }


async def _send_json(
    send: Send, status: int, content: dict[str, Any], extra: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(content).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += list(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiKey:
    """The server's API key, which its repr does not show (Starlette's list of middleware, which
    holds the :class:`Guard`'s options, prints them)."""

    __slots__ = ("value",)

    def __init__(self, key: str) -> None:
        self.value = key.encode("utf-8")

    def __repr__(self) -> str:
        return "ApiKey('***')"


class Guard:
    """ASGI middleware, in this order: refuse a request without the API key (401) or arriving
    while the server shuts down (503), refuse a body over ``limits.max_body_bytes`` (413) before
    the app sees it, answer an unexpected exception with a logged 500, count every answer in
    ``metrics``, release memory after large requests."""

    def __init__(
        self,
        app: Any,
        limits: ServerLimits,
        metrics: Metrics,
        api_key: ApiKey | str | None,
        shutting_down: threading.Event,
    ) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics
        if isinstance(api_key, str):
            api_key = ApiKey(api_key) if api_key else None
        self.api_key = api_key.value if api_key is not None else None
        self.shutting_down = shutting_down

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        status = 0

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_counted)
        finally:
            path = scope["path"]
            route = path if path in KNOWN_ROUTES else "other"
            # 499: the client left before an answer was sent.
            self.metrics.record(route, status or 499, time.perf_counter() - started_at)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path not in OPEN_ROUTES and scope["method"] != "OPTIONS":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, detail, headers = refusal
                await _drain(receive)
                await _send_json(send, status, error_body(path, status, detail), headers)
                return
        limit = self.limits.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= DRAIN_AT_MOST_BYTES and not _expects_continue(scope):
                await _drain(receive)
            error = self.limits.body_too_large(declared, declared=True)
            await _send_json(send, 413, error_body(path, 413, str(error)))
            return
        body = await _read_body(receive, limit)
        if body is None:  # the client left before sending its body
            return
        if len(body) > limit:
            await _drain(receive)
            error = self.limits.body_too_large(len(body), declared=False)
            await _send_json(send, 413, error_body(path, 413, str(error)))
            return

        replayed = False

        async def replay() -> Message:
            # The body once, then the server's own messages (http.disconnect when the client
            # goes), which is what request.is_disconnected() listens for.
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, replay, send_tracked)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # also a Rust panic (pyo3's PanicException is a BaseException)
            # Only a bug gets here: every refusal of a request is a JinaragError handled by the
            # app. Log the traceback, answer 500 with JSON like every other answer.
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                detail = (
                    "internal server error: a bug in jinarag, not in the request; the server's "
                    "log has the traceback, please report it"
                )
                await _send_json(send, 500, error_body(path, 500, detail))
        finally:
            state = scope.get("state") or {}
            if len(body) > RELEASE_ABOVE_BYTES or state.get("release_memory"):
                await asyncio.to_thread(release_memory)

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """(status, detail, headers) for a request refused before its body is read."""
        if self.api_key is not None:
            given = _header(scope, b"authorization") or b""
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                what = "a wrong API key" if given else "no API key"
                return (
                    401,
                    f"this server needs an API key and the request has {what}; send the header "
                    "'Authorization: Bearer KEY' with the key the server was started with "
                    "(--api-key or JINARAG_API_KEY)",
                    [(b"www-authenticate", b"Bearer")],
                )
        if self.shutting_down.is_set():
            return (
                503,
                "the server is shutting down; send the request to another instance, or again "
                "once this one is back",
                [(b"retry-after", b"1"), (b"connection", b"close")],
            )
        return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the HTTP server refuses a malformed one before we see it


def _expects_continue(scope: Scope) -> bool:
    # The client waits for "100 Continue" before sending; answering 413 at once spares the body.
    value = _header(scope, b"expect")
    return value is not None and value.lower() == b"100-continue"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The body, or its first ``limit + 1`` bytes when longer; None when the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[: limit + 1]
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a refused body (at most DRAIN_AT_MOST_BYTES)."""
    size = 0
    while size <= DRAIN_AT_MOST_BYTES:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


async def run_stoppable(
    work: Callable[[Callable[[], bool]], T],
    *,
    is_disconnected: Callable[[], Awaitable[bool]],
    poll_seconds: float = 0.1,
) -> T:
    """``work(should_stop)`` in a daemon thread; ``should_stop()`` turns True once the client
    disconnects or this coroutine is cancelled (uvicorn cancels what still runs when its
    graceful shutdown times out).

    A daemon thread, not the event loop's executor: at exit Python waits for executor threads,
    and a long tokenisation would hold up the server's shutdown.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    left = threading.Event()

    def should_stop() -> bool:
        return left.is_set()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = work(should_stop)
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        # RuntimeError: the loop closed while we worked, and nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=target, name="jinarag-request", daemon=True).start()
    try:
        while True:
            finished, _ = await asyncio.wait({done}, timeout=poll_seconds)
            if finished:
                return done.result()
            if not left.is_set() and await is_disconnected():
                left.set()
    finally:
        left.set()  # also when cancelled (uvicorn's graceful-shutdown timeout): stop the work
        if not done.done():
            done.cancel()  # so a late result is dropped, not logged as never retrieved
