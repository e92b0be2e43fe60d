"""The wire details of the remote models (:mod:`jinarag.inference.remote`): a server's root
URL, the indexed items of an answer, and the stop asked between requests. Light: httpx only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from jinarag.errors import Cancelled, InputError
from jinarag.redaction import redact_url

__all__ = ["by_index", "check_stop", "server_root"]


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
