"""The messages of the store's failures: one factory per kind, each naming the store and the fix.

:data:`jinarag.retrieval.store.collection._ERRORS` maps a failed Chroma call to one of these (the
table matches; these word the error). A URL is always shown redacted, and text quoted from a
client library is scrubbed of the URL's secrets (:mod:`jinarag.retrieval.store.redaction`).

Example:
    >>> raise no_permission(store, "open the store", exc)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jinarag.errors import (
    InputError,
    JinaragError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from jinarag.retrieval.store.files import SQLITE_FILE, rebuild_hint
from jinarag.retrieval.store.redaction import redact

if TYPE_CHECKING:
    from jinarag.retrieval.store.collection import ChromaStore

__all__ = [
    "bad_database",
    "bad_vectors",
    "failed",
    "lost",
    "no_permission",
    "not_a_folder",
    "raised_by_chroma",
    "read_only",
    "rejected",
    "says",
    "unreachable",
]


def raised_by_chroma(exc: BaseException) -> bool:
    # ChromaError, and the few plain exceptions Chroma defines (migrations, auth, configuration).
    return type(exc).__module__.split(".")[0] in ("chromadb", "chromadb_rust_bindings")


def says(*parts: str) -> Callable[[BaseException], bool]:
    """A row matcher: a Chroma error whose message contains one of ``parts`` (Chroma's Rust
    core reports sqlite and OS failures as InternalError with the cause in the text)."""
    return lambda exc: raised_by_chroma(exc) and any(p in str(exc) for p in parts)


def detail(store: ChromaStore, exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}", store.url)


def unreachable(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreUnavailableError(
        f"cannot reach the Chroma server at {store.shown_url} ({detail(store, exc)}). "
        "Start it (chroma run --path DIR --host HOST --port PORT) or fix the URL, then try "
        "again; add() is an upsert, so repeating an interrupted add completes it."
    )


def failed(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreError(f"Chroma failed to {what} in {store.where}: {detail(store, exc)}")


def lost(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    # A dropped connection means the server went away; on an embedded store, a local failure.
    return (unreachable if store.url is not None else failed)(store, what, exc)


def rejected(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return InputError(f"Chroma rejected the request to {what}: {detail(store, exc)}")


def bad_database(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    database = f"{store.where}/{SQLITE_FILE}" if store.url is None else store.where
    return StoreCorruptError(
        f"Chroma's database {database} is damaged ({detail(store, exc)}), so Chroma cannot "
        f"{what}. Restore the folder {store.where} from a backup, or delete it and index your "
        "files again."
    )


def bad_vectors(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    where = Path(store.where) if store.path is not None else None
    fix = rebuild_hint(where, store.name) if where is not None else "rebuild the collection"
    return StoreCorruptError(
        f"the vector index of collection {store.name!r} in {store.where} is damaged "
        f"({detail(store, exc)}), so Chroma cannot {what}. Fix: {fix}."
    )


def read_only(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"the store {store.where} is read-only ({detail(store, exc)}); Chroma needs to write "
        "to its folder even to read it. Give this user write permission (chmod -R u+w "
        f"{store.where}, or chown it), or open a writable copy of the folder."
    )


def no_permission(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"cannot {what} in {store.where}: permission denied ({detail(store, exc)}). Give "
        f"this user read and write permission on {store.where} and the folders above it "
        "(chmod/chown), or open a copy of the store you own."
    )


def not_a_folder(store: ChromaStore, what: str, exc: BaseException) -> JinaragError:
    return StoreError(
        f"the store path {store.where} is a file (or a file is in its way), not a folder "
        f"({detail(store, exc)}). Pass the path of a folder (it is created when missing), "
        "or move the file away."
    )
