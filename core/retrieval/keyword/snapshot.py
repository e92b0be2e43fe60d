"""The BM25 snapshot file, and the atomic write that saves it.

A snapshot stores the tokenised corpus as JSON, never pickled objects, so opening a store
cannot execute code. Next to the tokens it keeps the tokenizer's settings (tokens made with
other settings are not reused), a ``state`` chosen by the caller (what the corpus was built
from) and a sha256 over all of these: a snapshot whose tokens or state were altered is
refused (and said so in the log) rather than giving wrong BM25 results. It is written
atomically: a temporary file in the same folder, flushed and fsynced, then renamed over the
old one. :func:`check_snapshot_path` tells, before a write starts, whether the snapshot can be
saved where it belongs.

Example:
    >>> write_snapshot(Path("bm25.json"), {"stopwords": None}, {"generation": "g"},
    ...                {"a": ["wing", "stall"]})
    >>> read_snapshot(Path("bm25.json"), {"stopwords": None})
    ({'generation': 'g'}, {'a': ['wing', 'stall']})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinarag.errors import StoreCorruptError, StoreError

__all__ = [
    "SNAPSHOT_FORMAT",
    "atomic_write",
    "check_snapshot_path",
    "inspect_snapshot",
    "read_snapshot",
    "set_aside",
    "write_snapshot",
]

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "jinarag-bm25/2"  # /2 added the checksum; /1 snapshots are rebuilt once


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Temporary file in the same folder → flush → fsync → rename over ``path`` → fsync the folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file owner-only; a snapshot need not be
            os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable; Windows cannot open folders
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _checksum(tokenizer: Any, state: Any, ids: Any, tokens: Any) -> str:
    blob = json.dumps([tokenizer, state, ids, tokens], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_snapshot(
    path: Path,
    tokenizer: dict[str, Any],
    state: dict[str, Any],
    docs: Mapping[str, Sequence[str]],
) -> None:
    """Save ``docs`` (``{id: terms}``) with the tokenizer's spec and ``state``, atomically."""
    ids = list(docs)
    # Terms never contain spaces (they are runs of letters and digits): join them.
    tokens = [" ".join(toks) for toks in docs.values()]
    payload = {
        "format": SNAPSHOT_FORMAT,
        "tokenizer": tokenizer,
        "state": state,
        "sha256": _checksum(tokenizer, state, ids, tokens),
        "ids": ids,
        "tokens": tokens,
    }
    atomic_write(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def inspect_snapshot(
    path: Path, tokenizer: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, dict[str, list[str]] | None]:
    """``(status, state, {id: terms})`` of the snapshot at ``path``. ``status`` is ``"ok"``
    (state and terms given), ``"missing"``, ``"other format"``, ``"other tokenizer"`` (made
    by another version or tokenizer: usable after a rebuild), ``"damaged"`` (not readable as a
    snapshot) or ``"altered"`` (readable, but its checksum does not match its contents)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "missing", None, None
    except OSError:
        return "damaged", None, None
    try:
        payload = json.loads(raw)
        if payload.get("format") != SNAPSHOT_FORMAT:
            return "other format", None, None
        if payload.get("tokenizer") != tokenizer:
            return "other tokenizer", None, None
        ids, tokens, state = payload["ids"], payload["tokens"], payload["state"]
        if payload.get("sha256") != _checksum(tokenizer, state, ids, tokens):
            return "altered", None, None
        if len(ids) != len(tokens):
            return "damaged", None, None
        docs = {i: (t.split(" ") if t else []) for i, t in zip(ids, tokens, strict=True)}
    except (ValueError, KeyError, TypeError, AttributeError):
        return "damaged", None, None
    return "ok", state, docs


def read_snapshot(
    path: Path, tokenizer: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]] | None:
    """``(state, {id: terms})`` from a snapshot, or None when the file is missing, damaged,
    altered or was made with another tokenizer or format (the caller then rebuilds from its
    source of truth); a damaged or altered one is reported in the log."""
    status, state, docs = inspect_snapshot(path, tokenizer)
    if status in ("damaged", "altered"):
        why = "does not match its checksum (altered)" if status == "altered" else "is damaged"
        logger.warning("the BM25 snapshot %s %s; ignoring it: it is rebuilt from Chroma", path, why)
    if state is None or docs is None:
        return None
    return state, docs


def check_snapshot_path(path: Path) -> None:
    """Raise, naming the path and the fix, when a snapshot could not be saved at ``path``: the
    path is a folder, a file stands where its folder should be, or the folder is not writable.
    Called before a write starts, so a failure never leaves Chroma and BM25 apart."""
    if path.is_dir():
        raise StoreCorruptError(
            f"the BM25 snapshot path {path} is a folder, not a file. Remove that folder (the "
            "snapshot is derived data and is rebuilt from Chroma), then repeat the call."
        )
    blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise StoreCorruptError(
            f"the BM25 snapshot folder {path.parent} cannot be made: {blocker} is a file. Move "
            "that file away (the folder holds only derived data), then repeat the call."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StoreError(
            f"cannot write the BM25 snapshot in {path.parent} ({exc.strerror or exc}). Give "
            f"this user write permission on {path.parent} (chmod/chown), or open a writable "
            "copy of the store."
        ) from exc


def set_aside(path: Path) -> Path:
    """Rename the snapshot at ``path`` to ``<name>.set-aside-<UTC time>`` in its folder (kept,
    not deleted: it still lists what the store held) and return the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.set-aside-{stamp}")
    os.replace(path, target)
    return target
