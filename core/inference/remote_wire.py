"""The wire details of the remote models (:mod:`jinarag.inference.remote`): a server's root
URL, the HTTP calls and their errors (:class:`Wire`, which retries the server's 503 and dropped
connections), the indexed items of an answer, and the stop asked between requests. Light:
httpx only."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx

from jinarag.errors import Cancelled, InputError, RemoteError
from jinarag.redaction import redact, redact_url

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_RETRIES",
    "Wire",
    "by_index",
    "check_stop",
    "retry_after",
    "server_root",
]

API_KEY_ENV = "JINARAG_API_KEY"
START = "start one with `jinarag serve --model NAME`, or check base_url"
DEFAULT_RETRIES = 3
# Retried: the server's own "busy or shutting down, come back" (503 with Retry-After), and a
# connection dropped or reset mid-request. httpx's HTTPTransport(retries=) retries failed
# connects only; a server that cannot be reached at all is reported at once.
RETRIED_STATUS = 503
RETRIED_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
FIRST_BACKOFF = 0.5  # seconds before the 2nd try when the answer names no Retry-After; doubles
MAX_WAIT_UNTIMED = 60.0  # the longest wait between tries when timeout=None


def server_root(base_url: Any) -> str:
    """The server's root URL: ``base_url`` without a trailing slash or ``/v1``."""
    if isinstance(base_url, str):
        root = base_url.strip().rstrip("/").removesuffix("/v1").rstrip("/")
        try:
            url = httpx.URL(root)
        except httpx.InvalidURL:
            url = None
        if url is not None and url.scheme in ("http", "https") and url.host:
            return root
    shown = repr(redact_url(base_url)) if isinstance(base_url, str) else repr(base_url)
    raise InputError(
        f"base_url={shown} is not the URL of a jinarag server; pass its root, e.g. "
        "'http://127.0.0.1:8080' (what `jinarag serve` prints)"
    )


def by_index(items: Any, count: int) -> list[dict[str, Any]] | None:
    """The answer's items ordered by their ``index``, or None unless they are ``count``
    dicts with the indexes 0 to count - 1, each once."""
    if not isinstance(items, list) or len(items) != count:
        return None
    ordered: list[Any] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or ordered[index] is not None:
            return None
        ordered[index] = item
    return ordered


def check_stop(stop: Callable[[], bool] | None) -> None:
    if stop is not None and stop():
        raise Cancelled("stopped between requests to the jinarag server")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date, at
    least 0); None when there is none or it cannot be read."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Wire:
    """The HTTP calls of a remote model to the server at ``base_url`` (its root), with its
    headers and ``timeout``. A 503 or a dropped connection is tried again up to ``retries``
    times, after the answer's ``Retry-After`` (else 0.5 s, doubling), while the waits end
    within ``timeout`` of the first try (with ``timeout=None``, each wait is at most 60 s);
    nothing else is retried. A copy (pickle, deepcopy) opens its own connections."""

    def __init__(
        self, base_url: str, headers: dict[str, str], timeout: float | None, retries: int
    ) -> None:
        self.base_url = base_url
        self.shown_url = redact_url(base_url)  # what messages show
        self.headers = headers
        self.timeout = timeout
        self.retries = retries
        self._http = self._client()

    def _client(self) -> httpx.Client:
        # User info in the URL becomes basic authentication, and the client's URL goes without
        # it: httpx logs every request's URL (at INFO), which must not carry a password.
        url = httpx.URL(self.base_url)
        auth = httpx.BasicAuth(url.username, url.password) if url.userinfo else None
        return httpx.Client(
            base_url=url.copy_with(userinfo=b"") if url.userinfo else url,
            timeout=self.timeout,
            headers=self.headers,
            auth=auth,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_http": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._http = self._client()

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        self._http.close()
        self._http = self._client()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request, tried again as the class says; the answer's JSON, or the error that
        says what went wrong (InputError for a 4xx, RemoteError otherwise)."""
        url = f"{self.shown_url}{path}"
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            response, dropped = self._send(url, method, path, body)
            if response is not None and response.status_code != RETRIED_STATUS:
                break
            header = response.headers.get("Retry-After") if response is not None else None
            asked = retry_after(header)
            wait = asked if asked is not None else FIRST_BACKOFF * 2 ** (tries - 1)
            gave_up = f"after {tries} {'try' if tries == 1 else 'tries'}"
            if tries > self.retries:
                break
            if self.timeout is None:
                wait = min(wait, MAX_WAIT_UNTIMED)
            elif time.monotonic() + wait - started > self.timeout:
                gave_up += f" (waiting {wait:g} s more would pass timeout={self.timeout:g} s)"
                break
            time.sleep(wait)
        if response is None:
            raise RemoteError(
                f"the jinarag server at {url} dropped the connection before answering, "
                f"{gave_up} "
                + redact(f"(last: {type(dropped).__name__}: {dropped}); ", self.base_url)
                + "check the server's log, or that nothing between it and here cuts connections"
            ) from dropped
        if response.status_code == RETRIED_STATUS:
            raise self.refusal(url, response, f"; gave up {gave_up}")
        if response.status_code >= 400:
            raise self.refusal(url, response)
        try:
            return response.json()
        except ValueError as exc:
            raise self.malformed(path, "an answer that is not JSON") from exc

    def _send(
        self, url: str, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[httpx.Response | None, Exception | None]:
        try:
            return self._http.request(method, path, json=body), None
        except RETRIED_ERRORS as exc:
            return None, exc
        except httpx.TimeoutException as exc:
            raise RemoteError(
                f"the jinarag server at {url} did not answer within timeout={self.timeout} s; "
                "pass a larger timeout or a smaller batch_size, or check that the server is "
                "running"
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"cannot reach a jinarag server at {url} "
                + redact(f"({type(exc).__name__}: {exc}); {START}", self.base_url)
            ) from exc

    def refusal(self, url: str, response: httpx.Response, tries: str = "") -> Exception:
        """The error of an answer over 400: InputError for a 4xx, RemoteError for a 5xx
        (``tries``: how the tries ended, for a 503)."""
        status = response.status_code
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:300] or response.reason_phrase
        said = f"the jinarag server at {url} answered HTTP {status}: {detail}"
        if status == 401:
            return InputError(f"{said}; pass api_key=, or set {API_KEY_ENV}")
        if status == 413:
            return InputError(f"{said}; or send fewer texts per request (batch_size=)")
        if status < 500:
            return InputError(said)
        if status == RETRIED_STATUS:
            return RemoteError(
                f"{said}{tries}; pass a larger timeout= or retries=, retry later, or see the "
                "server's log"
            )
        return RemoteError(f"{said}; retry later, or see the server's log")

    def malformed(self, path: str, what: str) -> RemoteError:
        return RemoteError(
            f"{self.shown_url}{path} sent {what}; is base_url a jinarag server? {START}"
        )
