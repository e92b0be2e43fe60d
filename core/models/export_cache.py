"""A cache of exported models: one folder per key, written whole or not at all, verified before
every use.

The key is the SHA-256 of everything the export depends on (the checkpoint's weights and
config, the runtime's and jinarag's versions, the export options), so a changed checkpoint or
an upgrade gets a folder of its own. A folder holds the exported files and ``meta.json``: the
key, what it was computed from, and the SHA-256 of each file. Loading reads the files' bytes
once, checks them against ``meta.json`` and hands over those same bytes: a folder that does
not match (damaged, half-copied, edited) is rebuilt, never used. Only the named files are
read, as data; anything else in a folder is ignored.

Location: ``$JINARAG_CACHE_DIR/<runtime>/`` when the variable is set, else
``$XDG_CACHE_HOME/jinarag/<runtime>/`` (``~/.cache/jinarag/<runtime>/``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinarag.errors import warn

__all__ = ["CACHE_ENV", "ExportCache", "cache_root", "file_sha256"]

CACHE_ENV = "JINARAG_CACHE_DIR"
META_FILE = "meta.json"
_CHUNK = 1 << 20
_WARNED: set[str] = set()  # folders already warned about, so a rebuild is reported once


def cache_root() -> Path:
    """jinarag's cache folder: ``$JINARAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jinarag`` or
    ``~/.cache/jinarag``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "jinarag"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def key_of(inputs: Mapping[str, Any]) -> str:
    """The cache key of ``inputs`` (plain JSON data): the SHA-256 of their canonical JSON."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ExportCache:
    """Exported files of one runtime under ``root`` (default: :func:`cache_root` / runtime),
    named ``files`` in every folder.

    Example:
        >>> cache = ExportCache("openvino", ("model.xml", "model.bin"))
        >>> found = cache.load({"weights": "…", "options": {}})  # None: export, then store
    """

    def __init__(self, runtime: str, files: tuple[str, ...], root: Path | None = None) -> None:
        self.files = files
        self.root = root if root is not None else cache_root() / runtime

    def folder(self, inputs: Mapping[str, Any]) -> Path:
        return self.root / key_of(inputs)

    def load(self, inputs: Mapping[str, Any]) -> dict[str, bytes] | None:
        """The verified bytes of each file stored for ``inputs``, or None when there is no
        such folder or it does not verify (then it is rebuilt: a warning says so, once)."""
        folder = self.folder(inputs)
        if not folder.exists():
            return None
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            contents = {name: (folder / name).read_bytes() for name in self.files}
        except (OSError, ValueError) as exc:
            return self._stale(folder, f"unreadable ({type(exc).__name__}: {exc})")
        if not isinstance(meta, dict) or meta.get("key") != folder.name:
            return self._stale(folder, f"{META_FILE} names another key")
        if meta.get("inputs") != json.loads(json.dumps(inputs)):
            return self._stale(folder, f"{META_FILE} records other inputs")
        hashes = meta.get("files")
        for name, data in contents.items():
            if not isinstance(hashes, dict) or hashes.get(name) != hashlib.sha256(data).hexdigest():
                return self._stale(folder, f"{name} does not match its SHA-256 in {META_FILE}")
        return contents

    def store(self, inputs: Mapping[str, Any], write: Callable[[Path], None]) -> Path | None:
        """Run ``write(folder)`` into a fresh temporary folder, record the files' hashes, and
        move it into place in one rename. Returns the folder, or None when the cache cannot be
        written (a warning says why; the caller goes on with what it exported)."""
        final = self.folder(inputs)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = Path(tempfile.mkdtemp(prefix=f".{final.name[:16]}-", dir=self.root))
        except OSError as exc:
            warn(
                f"cannot write the export cache {self.root} ({exc}); set {CACHE_ENV} to a "
                "writable folder to keep exported models between loads.",
                RuntimeWarning,
            )
            return None
        try:
            write(temporary)
            meta = {
                "key": final.name,
                "inputs": inputs,
                "files": {name: file_sha256(temporary / name) for name in self.files},
            }
            (temporary / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            _discard(final)  # a stale folder of this key, already reported by load()
            os.replace(temporary, final)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            if self.load(inputs) is not None:
                return final  # another process stored the same export first
            warn(f"cannot store the exported model in {final} ({exc}).", RuntimeWarning)
            return None
        return final

    def _stale(self, folder: Path, why: str) -> None:
        if str(folder) not in _WARNED:
            _WARNED.add(str(folder))
            warn(f"the exported model in {folder} is {why}: exporting it again.", RuntimeWarning)
        return None


def _discard(folder: Path) -> None:
    """Remove ``folder`` (moved aside first, so a reader never sees it half-deleted)."""
    if not folder.exists():
        return
    aside = folder.with_name(f".discard-{uuid.uuid4().hex}")
    try:
        os.replace(folder, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)
