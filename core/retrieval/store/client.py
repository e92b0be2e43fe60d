"""Chroma clients (an embedded store in a folder, a server at a URL, a private in-memory one),
and the check that a collection may be used by an embedder (:func:`claim`).

Chroma keeps one "system" per store folder and process, shared by every client opened on that
folder, and that system holds the collection's vector index in memory. When another process
writes the folder, the copy in memory is stale, and a write made from it overwrites the other
process's vectors on disk (records then vanish from dense search, or Chroma fails with "Error
finding id"). :func:`drop_system` forgets this process's system for a folder, so that the next
client reads the folder anew; :class:`jinarag.retrieval.store.collection.ChromaStore` does that when
the collection's write generation shows a write that did not come from this process.

Example:
    >>> client = connect(Path("./store"), lambda what, fn, *args: fn(*args))
"""

from __future__ import annotations

import base64
import contextlib
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings

from jinarag.errors import EmbedderMismatchError, InputError, StoreError
from jinarag.retrieval.store.redaction import redact_url

__all__ = [
    "META_DIM",
    "META_EMBEDDER",
    "META_WEIGHTS",
    "Claimant",
    "Seen",
    "chroma_settings",
    "claim",
    "connect",
    "drop_system",
    "memory_client",
    "recorded_on_server",
    "seen",
    "server_client",
]

logger = logging.getLogger(__name__)

META_EMBEDDER = "jinarag:embedder"  # collection metadata: the embedder's name ...
META_DIM = "jinarag:dim"  # ... its dimension ...
META_WEIGHTS = "jinarag:weights"  # ... and the SHA-256 of its weights file, when known


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
        fresh = where not in SharedSystemClient._identifier_to_system
        try:
            return chromadb.PersistentClient(path=where, settings=settings)
        except Exception:
            # Chroma caches a folder's system before starting it: forget one that failed to
            # start, so that trying again starts it anew rather than use it half-made.
            if fresh:
                SharedSystemClient._identifier_to_system.pop(where, None)
                SharedSystemClient._identifier_to_refcount.pop(where, None)
            raise

    client, _ = call("open the store", _local, make, where)
    return client


def server_client(url: str) -> Any:
    """An HTTP client for the Chroma server at ``url``. Credentials in the URL
    (``http://user:password@host:port``) are sent as HTTP basic authentication and never shown:
    every message names the URL through :func:`jinarag.retrieval.store.redaction.redact_url`."""
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
        settings=chroma_settings(),
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


class Claimant(Protocol):
    """What :func:`claim` reads of a store (a
    :class:`~jinarag.retrieval.store.collection.ChromaStore` is one)."""

    where: str  # the store as messages name it
    name: str  # the collection
    embedder: str
    dim: int

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


def claim(store: Claimant, collection: Any, meta: dict[str, Any]) -> bool:
    """Check that ``store``'s embedder may use ``collection`` (cosine distance; the embedder
    and dimension it records, or, when it records none, the size of its stored vectors).
    Returns True when the collection records no embedder yet: the caller then claims it.

    Raises:
        StoreError: the collection uses another distance.
        EmbedderMismatchError: it was built with another embedder, or holds other-sized vectors.
    """
    where, name = store.where, store.name
    space = (collection.configuration or {}).get("hnsw", {}) or {}
    if space.get("space", "cosine") != "cosine":
        raise StoreError(
            f"collection {name!r} in {where} uses {space['space']!r} distance; HybridIndex "
            "needs cosine. Use another collection name."
        )
    recorded = meta.get(META_EMBEDDER)
    if recorded is not None:
        if recorded != store.embedder or meta.get(META_DIM) != store.dim:
            raise EmbedderMismatchError(
                f"collection {name!r} in {where} was built with embedder {recorded!r} (dim "
                f"{meta.get(META_DIM)}), but this index uses {store.embedder!r} (dim "
                f"{store.dim}); mixing them would compare vectors from different spaces. Open "
                "it with the same embedder, or use another collection name or path."
            )
        return False
    # Made by someone else: it can be ours if its vectors have our dimension.
    got = store.call("read a stored vector", collection.get, limit=1, include=["embeddings"])
    vectors = got.get("embeddings")
    if vectors is not None and len(vectors) and len(vectors[0]) != store.dim:
        raise EmbedderMismatchError(
            f"collection {name!r} in {where} holds {len(vectors[0])}-d vectors but embedder "
            f"{store.embedder!r} makes {store.dim}-d ones; use another collection name."
        )
    if vectors is not None and len(vectors):
        logger.warning(
            "collection %r has records but no record of its embedder; assuming %r",
            name,
            store.embedder,
        )
    return True


def recorded_on_server(url: str, name: str) -> dict[str, Any]:
    """The ``jinarag:*`` metadata of collection ``name`` on the Chroma server at ``url``
    (embedder, dimension, weights hash), read without opening an index; empty when the server
    cannot be reached or holds no such collection (opening the index then says why)."""
    try:
        meta = server_client(url).get_collection(name).metadata or {}
    except Exception:  # reported, with its fix, by the index that opens the store next
        return {}
    return {key: value for key, value in meta.items() if str(key).startswith("jinarag:")}


def drop_system(client: Any) -> None:
    """Forget this process's Chroma system for ``client``'s store folder, so the next client
    opened on it reads the folder anew. Clients still holding the old system keep it until
    they are collected; nothing is stopped under them."""
    identifier = getattr(client, "_identifier", None)
    if identifier is None:
        return
    # Chroma offers no per-folder reset (clear_system_cache forgets every store).
    SharedSystemClient._identifier_to_system.pop(identifier, None)
    SharedSystemClient._identifier_to_refcount.pop(identifier, None)


def _local(make: Any, where: str) -> tuple[Any, Settings]:
    """An embedded Chroma client (and its settings) with telemetry off. Chroma allows one set
    of settings per store and process, so ours are Chroma's defaults (:func:`chroma_settings`): the
    user's own ``chromadb.EphemeralClient()`` or ``PersistentClient(path)`` in the same process,
    before or after an index, then shares the instance instead of failing. A client the user
    made with other settings first is shared as it is."""
    try:
        return make(chroma_settings()), chroma_settings()
    except ValueError as exc:
        if "different settings" not in str(exc):
            raise
    settings = Settings(anonymized_telemetry=not chroma_settings().anonymized_telemetry)
    try:
        return make(settings), settings
    except ValueError as exc:
        raise StoreError(
            f"this process already opened the Chroma store {where!r} with other settings "
            f"({exc}); open the index before other Chroma clients, or with Chroma's default "
            "settings"
        ) from exc


def chroma_settings() -> Settings:
    """Chroma's default settings: telemetry is off through ``ANONYMIZED_TELEMETRY``, which
    ``import jinarag`` sets when unset, rather than a setting passed here, so that clients the
    user makes with Chroma's defaults have settings equal to ours."""
    return Settings()


def _drop_database(admin: Any, database: str) -> None:
    with contextlib.suppress(Exception):
        admin.delete_database(database)
