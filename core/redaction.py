"""Secrets kept out of messages: a URL is shown without its user info, query values or fragment.

A leaf every layer uses: the store names its Chroma server with it
(:mod:`jinarag.retrieval.store.redaction`), the remote models their jinarag server, the command
line its arguments. A URL may carry credentials (``http://user:password@host:8000``, or
``user:password@host`` without a scheme), a token in its query string (``?token=...``) or in
its fragment (``#token=...``). Every message, log line and repr that shows a URL goes through
:func:`redact_url`, and text that may quote one (an exception from a client library, an
argparse error) through :func:`redact`.

The URL is split by hand rather than by :func:`urllib.parse.urlsplit`, which reads
``user:password@host`` as a scheme and a path and refuses an unbalanced ``[``: whatever the
shape, what comes before the last ``@`` of the authority is hidden, and so is every query value
and the whole fragment. A password with an unescaped ``/``, ``?`` or ``#`` is hidden whole too;
the price is that an ``@`` in a path (``http://host/a@b``) hides the part before it.

Example:
    >>> redact_url("http://ana:s3cret@db.local:8000/?token=abc&tenant=t1")
    'http://***@db.local:8000/?token=***&tenant=***'
    >>> redact_url("ana:s3cret@db.local:8000/#token=abc")
    '***@db.local:8000/#***'
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import unquote, unquote_plus

__all__ = ["UrlsRedactedInRepr", "redact", "redact_url", "url_secrets"]

_HIDDEN = "***"
# An optional scheme and the "//" that opens the authority: "http://", "HTTPS://", "//".
_OPENING = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")
# Secret pieces shorter than this are not hunted in free text (they would cut words apart);
# they are still hidden wherever the URL itself is shown.
_SHORTEST = 3


class _Parts(NamedTuple):
    opening: str  # "http://", "//" or ""
    userinfo: str | None  # what precedes the "@", None without one
    rest: str  # host, port and path
    query: str | None  # after "?", None without one
    fragment: str | None  # after "#", None without one


def _split(url: str) -> _Parts:
    match = _OPENING.match(url)
    opening = match.group(0) if match else ""
    tail = url[len(opening) :]
    at = _userinfo_end(tail)
    userinfo = tail[:at] if at >= 0 else None
    tail = tail[at + 1 :]
    tail, hash_sign, fragment = tail.partition("#")
    rest, question, query = tail.partition("?")
    return _Parts(
        opening, userinfo, rest, query if question else None, fragment if hash_sign else None
    )


def _userinfo_end(tail: str) -> int:
    """The index of the ``@`` that ends the user info of ``tail`` (a URL after its ``//``), -1
    when it has none. The authority ends at the first ``/``, ``?`` or ``#``; but when a ``?``
    or ``#`` comes before any ``/``, it may be part of a password, so the last ``@`` counts."""
    slash = tail.find("/")
    marks = [i for i in (tail.find("?"), tail.find("#")) if i >= 0]
    first_mark = min(marks) if marks else -1
    if first_mark >= 0 and (slash < 0 or first_mark < slash):
        return tail.rfind("@")
    end = first_mark if first_mark >= 0 else len(tail)
    return tail.rfind("@", 0, end)


def redact_url(url: str) -> str:
    """``url`` with its user info, every query value and its fragment replaced by ``***``.

    Any text is accepted (a URL without a scheme, a malformed one); one without secrets comes
    back unchanged, and the host and port always stay visible.
    """
    parts = _split(url)
    shown = parts.opening
    if parts.userinfo is not None:
        shown += f"{_HIDDEN}@"
    shown += parts.rest
    if parts.query is not None:
        shown += "?" + "&".join(
            f"{pair.partition('=')[0]}={_HIDDEN}" if "=" in pair else (_HIDDEN if pair else "")
            for pair in parts.query.split("&")
        )
    if parts.fragment is not None:
        shown += "#" + (_HIDDEN if parts.fragment else "")
    return shown


def url_secrets(url: str) -> list[str]:
    """The secret pieces of ``url``, longest first, as written and percent-decoded: the user
    info, the user and the password (and their pieces between unescaped delimiters), each query
    value (or bare query item), and the fragment and its values.
    What :func:`redact` removes from free text (pieces of at least three characters)."""
    parts = _split(url)
    found: set[str] = set()
    if parts.userinfo:
        # The user, the password, and the pieces another parser would see of a password
        # with an unescaped "/", "?", "#" or "@" in it.
        found |= {parts.userinfo, *parts.userinfo.split(":", 1)}
        found |= set(re.split(r"[:/?#@]", parts.userinfo))
    for text in (parts.query, parts.fragment):
        if text:
            found.add(text)
            for pair in text.split("&"):
                found.add(pair.partition("=")[2] if "=" in pair else pair)
    found |= {unquote(s) for s in found} | {unquote_plus(s) for s in found}
    return sorted((s for s in found if len(s) >= _SHORTEST), key=len, reverse=True)


def redact(text: str, *urls: str | None) -> str:
    """``text`` with each of ``urls`` shown redacted and any of their secrets (see
    :func:`url_secrets`) replaced by ``***``, wherever they appear: a library's message may
    quote them, decoded or not. None among ``urls`` is skipped."""
    for url in urls:
        if url is None:
            continue
        text = text.replace(url, redact_url(url))
        for secret in url_secrets(url):
            text = text.replace(secret, _HIDDEN)
    return text


class UrlsRedactedInRepr:
    """A mixin for pydantic models (the adapters): a field whose name ends in ``url`` is shown
    redacted by ``repr`` and ``str``, as every other output shows a URL."""

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():  # type: ignore[misc]
            if isinstance(name, str) and name.endswith("url") and isinstance(value, str):
                value = redact_url(value)
            yield name, value
