"""Chroma's failures as ours: the table that matches a failed call (:data:`ERRORS`), and one
factory per kind that words it, naming the store and the fix.

:meth:`jinarag.retrieval.store.collection.ChromaStore.call` runs every Chroma call through
:func:`translate`. A URL is always shown redacted, and text quoted from a client library is
scrubbed of the URL's secrets (:mod:`jinarag.retrieval.store.redaction`). A new Chroma failure
is a row of :data:`ERRORS` (and, when no factory fits, a new factory).

Example:
    >>> raise no_permission(store, "open the store", exc)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from chromadb.errors import InvalidArgumentError

from jinarag.errors import (
    InputError,
    JinaragError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from jinarag.retrieval.store.files import SQLITE_FILE, rebuild_hint
from jinarag.retrieval.store.redaction import redact

__all__ = [
    "ERRORS",
    "Located",
    "bad_database",
    "BUSY_WAIT",
    "bad_vectors",
    "busy",
    "database_busy",
    "failed",
    "lost",
    "no_permission",
    "not_a_folder",
    "raised_by_chroma",
    "read_only",
    "rejected",
    "run",
    "says",
    "translate",
    "unreachable",
]

logger = logging.getLogger(__name__)

# How long a call waits out sqlite's lock held by another process, and its first pause.
BUSY_WAIT = 60.0
_BUSY_PAUSE = 0.05


class Located(Protocol):
    """What a message names of a store (a
    :class:`~jinarag.retrieval.store.collection.ChromaStore` is one)."""

    path: Path | None  # the folder of an embedded store
    url: str | None  # a server's URL, secrets included (never shown)
    shown_url: str | None  # the URL as shown, without its secrets
    where: str  # the store as messages name it: a folder, a server, or "memory"
    name: str  # the collection


def raised_by_chroma(exc: BaseException) -> bool:
    # ChromaError, and the few plain exceptions Chroma defines (migrations, auth, configuration).
    return type(exc).__module__.split(".")[0] in ("chromadb", "chromadb_rust_bindings")


def says(*parts: str) -> Callable[[BaseException], bool]:
    """A row matcher: a Chroma error whose message contains one of ``parts`` (Chroma's Rust
    core reports sqlite and OS failures as InternalError with the cause in the text)."""
    return lambda exc: raised_by_chroma(exc) and any(p in str(exc) for p in parts)


def detail(store: Located, exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}", store.url)


# sqlite's SQLITE_BUSY: another process holds the database's lock. Its busy handler waits for
# most holders, but not for two processes that set up a new store's tables at once.
database_busy = says("database is locked")


def busy(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreBusyError(
        f"Chroma's database in {store.where} stayed locked by another process while this one "
        f"tried to {what} ({detail(store, exc)}). Wait for the other process (another index "
        "run, a chroma server on the folder) to finish and repeat the call; add() is an "
        "upsert, so repeating it completes an interrupted write."
    )


def unreachable(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreUnavailableError(
        f"cannot reach the Chroma server at {store.shown_url} ({detail(store, exc)}). "
        "Start it (chroma run --path DIR --host HOST --port PORT) or fix the URL, then try "
        "again; add() is an upsert, so repeating an interrupted add completes it."
    )


def failed(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreError(f"Chroma failed to {what} in {store.where}: {detail(store, exc)}")


def lost(store: Located, what: str, exc: BaseException) -> JinaragError:
    # A dropped connection means the server went away; on an embedded store, a local failure.
    return (unreachable if store.url is not None else failed)(store, what, exc)


def rejected(store: Located, what: str, exc: BaseException) -> JinaragError:
    return InputError(f"Chroma rejected the request to {what}: {detail(store, exc)}")


def bad_database(store: Located, what: str, exc: BaseException) -> JinaragError:
    database = f"{store.where}/{SQLITE_FILE}" if store.url is None else store.where
    return StoreCorruptError(
        f"Chroma's database {database} is damaged ({detail(store, exc)}), so Chroma cannot "
        f"{what}. Restore the folder {store.where} from a backup, or delete it and index your "
        "files again."
    )


def bad_vectors(store: Located, what: str, exc: BaseException) -> JinaragError:
    where = Path(store.where) if store.path is not None else None
    fix = rebuild_hint(where, store.name) if where is not None else "rebuild the collection"
    return StoreCorruptError(
        f"the vector index of collection {store.name!r} in {store.where} is damaged "
        f"({detail(store, exc)}), so Chroma cannot {what}. Fix: {fix}."
    )


def read_only(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"the store {store.where} is read-only ({detail(store, exc)}); Chroma needs to write "
        "to its folder even to read it. Give this user write permission (chmod -R u+w "
        f"{store.where}, or chown it), or open a writable copy of the folder."
    )


def no_permission(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"cannot {what} in {store.where}: permission denied ({detail(store, exc)}). Give "
        f"this user read and write permission on {store.where} and the folders above it "
        "(chmod/chown), or open a copy of the store you own."
    )


def not_a_folder(store: Located, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"the store path {store.where} is a file (or a file is in its way), not a folder "
        f"({detail(store, exc)}). Pass the path of a folder (it is created when missing), "
        "or move the file away."
    )


_Match = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
_Make = Callable[[Located, str, BaseException], JinaragError]

ERRORS: tuple[tuple[_Match, _Make], ...] = (
    (httpx.TransportError, unreachable),
    ((ConnectionError, TimeoutError), lost),
    # Damage: sqlite's own words, then the vector index's (a missing, cut or altered HNSW
    # segment; a write log Chroma cannot read back, e.g. after a NaN in a metadata list).
    # Another process holds sqlite's lock (two processes creating one store at once): the
    # caller retries this row for a while first (ChromaStore.call).
    (database_busy, busy),
    (says("database disk image is malformed", "file is not a database"), bad_database),
    (
        says(
            "Error loading hnsw",
            "hnsw segment",
            "Error finding id",
            "Error getting embedding",
            "Error deserializing pickle",
            "Error in compaction",
        ),
        bad_vectors,
    ),
    # The folder: read-only, not ours, or a file (Chroma's Rust core words, then Python's).
    (says("readonly database"), read_only),
    (says("Permission denied", "unable to open database file"), no_permission),
    (says("File exists (os error 17)", "Not a directory (os error 20)"), not_a_folder),
    (PermissionError, no_permission),
    ((NotADirectoryError, FileExistsError), not_a_folder),
    # Chroma's argument errors: a bad where filter, bad metadata, a bad collection name, ...
    ((ValueError, InvalidArgumentError), rejected),
    (raised_by_chroma, failed),
    (OSError, failed),
)
"""How a failed Chroma call becomes our error: ``(exception classes or a predicate, factory)``,
the first match wins; an exception no row matches propagates unchanged."""


def translate(store: Located, what: str, exc: BaseException) -> JinaragError | None:
    """Our error for ``exc``, raised while Chroma tried to ``what`` in ``store``: the first row
    of :data:`ERRORS` that matches; None when none does."""
    for match, make in ERRORS:
        hit = isinstance(exc, match) if isinstance(match, type | tuple) else match(exc)
        if hit:
            return make(store, what, exc)
    return None


def run(store: Located, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a Chroma call made to ``what`` in ``store``, its failures
    turned into ours by :data:`ERRORS`. A call that finds sqlite locked by another process is
    tried again for up to :data:`BUSY_WAIT` seconds: a failed sqlite transaction changed
    nothing, and every call the store makes may be repeated."""
    pause, deadline = _BUSY_PAUSE, time.monotonic() + BUSY_WAIT
    while True:
        try:
            return fn(*args, **kwargs)
        except JinaragError:
            raise
        except Exception as exc:
            if database_busy(exc) and time.monotonic() < deadline:
                logger.info("%s is locked by another process; trying again", store.where)
                time.sleep(pause)
                pause = min(2 * pause, 1.0)
                continue
            if (error := translate(store, what, exc)) is not None:
                raise error from exc
            raise
