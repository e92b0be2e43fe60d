"""Chroma clients: an embedded store in a folder, a server at a URL, a private in-memory one.

Chroma keeps one "system" per store folder and process, shared by every client opened on that
folder, and that system holds the collection's vector index in memory. When another process
writes the folder, the copy in memory is stale, and a write made from it overwrites the other
process's vectors on disk (records then vanish from dense search, or Chroma fails with "Error
finding id"). :func:`drop_system` forgets this process's system for a folder, so that the next
client reads the folder anew; :class:`jinarag.retrieval.chroma_store.ChromaStore` does that when
the collection's write generation shows a write that did not come from this process.

Example:
    >>> client = connect(Path("./store"), lambda what, fn, *args: fn(*args))
"""

from __future__ import annotations

import base64
import contextlib
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import chromadb
from chromadb.config import Settings

from jinarag.errors import InputError, StoreError
from jinarag.retrieval.redaction import redact_url

__all__ = ["Seen", "connect", "drop_system", "memory_client", "seen", "server_client"]


@dataclass
class Seen:
    """What this process's Chroma system for one store folder has seen."""

    epoch: int = 0  # bumped when the system is dropped: every store on the folder reconnects
    generations: dict[str, str | None] = field(default_factory=dict)  # by collection

    def note(self, collection: str, generation: str | None) -> bool:
        """Record the generation just read; True (and a new epoch) when it is one this process
        neither wrote nor saw: another process wrote, so the system must be dropped."""
        foreign = collection in self.generations and self.generations[collection] != generation
        self.generations[collection] = generation
        if foreign:
            self.epoch += 1
        return foreign


_SEEN: dict[str, Seen] = {}  # by store folder, as Chroma names its systems


def seen(where: str) -> Seen:
    """The one :class:`Seen` of this process for the store folder ``where``."""
    return _SEEN.setdefault(where, Seen())


def connect(path: Path, call: Callable[..., Any]) -> Any:
    """An embedded Chroma client on the folder ``path``; ``call`` runs the Chroma call (so its
    failures go through the store's error table)."""
    where = str(path)

    def make(settings: Settings) -> Any:
        return chromadb.PersistentClient(path=where, settings=settings)

    client, _ = call("open the store", _local, make, where)
    return client


def server_client(url: str) -> Any:
    """An HTTP client for the Chroma server at ``url``. Credentials in the URL
    (``http://user:password@host:port``) are sent as HTTP basic authentication and never shown:
    every message names the URL through :func:`jinarag.retrieval.redaction.redact_url`."""
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else 8000
        host = parts.hostname
    except ValueError as exc:  # a port that is not a number, an unbalanced "["
        raise InputError(
            f"url must look like http://HOST:PORT (a Chroma server), got {redact_url(url)!r} "
            f"({exc})"
        ) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InputError(
            f"url must look like http://HOST:PORT (a Chroma server), got {redact_url(url)!r}"
        )
    headers: dict[str, str] = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return chromadb.HttpClient(
        host=host,
        port=port,
        ssl=parts.scheme == "https",
        headers=headers or None,
        settings=Settings(anonymized_telemetry=False),
    )


def memory_client(owner: object) -> tuple[Any, weakref.finalize]:
    """A private in-memory client, its database dropped when ``owner`` is collected (or the
    returned finalizer is called): Chroma shares one in-memory system per process, so two
    indexes with the same collection name would otherwise mix."""
    database = f"jinarag-{uuid.uuid4().hex}"
    admin, settings = _local(chromadb.AdminClient, "memory")
    admin.create_database(database)
    finalizer = weakref.finalize(owner, _drop_database, admin, database)
    return chromadb.EphemeralClient(settings=settings, database=database), finalizer


def drop_system(client: Any) -> None:
    """Forget this process's Chroma system for ``client``'s store folder, so the next client
    opened on it reads the folder anew. Clients still holding the old system keep it until
    they are collected; nothing is stopped under them."""
    from chromadb.api.shared_system_client import SharedSystemClient

    identifier = getattr(client, "_identifier", None)
    if identifier is None:
        return
    # Chroma offers no per-folder reset (clear_system_cache forgets every store).
    SharedSystemClient._identifier_to_system.pop(identifier, None)
    SharedSystemClient._identifier_to_refcount.pop(identifier, None)


def _local(make: Any, where: str) -> tuple[Any, Settings]:
    """An embedded Chroma client (and its settings) with telemetry off. Chroma allows one set
    of settings per store and process: when this process already opened the store with
    Chroma's defaults, share that instance rather than fail."""
    settings = Settings(anonymized_telemetry=False)
    try:
        return make(settings), settings
    except ValueError as exc:
        if "different settings" not in str(exc):
            raise
    settings = Settings()
    try:
        return make(settings), settings
    except ValueError as exc:
        raise StoreError(
            f"this process already opened the Chroma store {where!r} with other settings "
            f"({exc}); open the index before other Chroma clients, or with the same settings"
        ) from exc


def _drop_database(admin: Any, database: str) -> None:
    with contextlib.suppress(Exception):
        admin.delete_database(database)
