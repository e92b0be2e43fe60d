"""Secrets kept out of messages: a URL is shown without its password or query-string tokens.

A Chroma URL may carry credentials (``http://user:password@host:8000``) or a token in its query
string (``?token=...``). Every message, log line and repr that shows a URL goes through
:func:`redact_url`, and text that may quote one (an exception from a client library) through
:func:`redact`.

Example:
    >>> redact_url("http://ana:s3cret@db.local:8000/?token=abc&tenant=t1")
    'http://***@db.local:8000/?token=***&tenant=***'
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = ["redact", "redact_url", "url_secrets"]

_HIDDEN = "***"


def redact_url(url: str) -> str:
    """``url`` with its user info replaced by ``***`` and every query-string value by ``***``.

    Text that does not parse as a URL is returned with the same rules applied as far as they
    go; a URL without secrets comes back unchanged.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # e.g. an unbalanced "[" in the host: hide everything before "@"
        return _HIDDEN + url[url.rfind("@") :] if "@" in url else url
    if "@" in netloc:
        netloc = f"{_HIDDEN}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        query = "&".join(
            f"{quote(key, safe='')}={_HIDDEN}"
            for key, _ in parse_qsl(query, keep_blank_values=True)
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret pieces of ``url`` (user info, password, query values), longest first, as
    written and percent-decoded: what :func:`redact` removes from free text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    found: set[str] = set()
    if parts is not None and "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.add(userinfo)
        if parts.password:
            found.add(parts.password)
    if parts is not None and parts.query:
        for pair in parts.query.split("&"):
            value = pair.partition("=")[2]
            if value:
                found.add(value)
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def redact(text: str, url: str | None) -> str:
    """``text`` with ``url`` shown redacted and any of its secrets (see :func:`url_secrets`)
    replaced by ``***``, wherever they appear (a library's message may quote them)."""
    if url is None:
        return text
    text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, _HIDDEN)
    return text
