"""The write lock of a store folder: one writer at a time, across processes.

Chroma's embedded store is not safe for two writers: each process keeps its own copy of the
vector index in memory and writes it back over the other's, so records vanish from dense
search while every count still looks right. :class:`StoreLock` serialises writers with an
advisory lock (``fcntl.flock``) on ``jinarag.lock`` inside the store folder. The operating
system releases it when the holder exits or is killed, so a crashed writer never leaves a
stale lock behind. The holder writes its PID into the file, for the messages of those waiting.

Readers do not take it. Without fcntl (Windows) there is no lock: run one writer at a time.

Example:
    >>> with StoreLock(Path("./store"), timeout=600):
    ...     index_records()
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from jinarag.errors import InputError, StoreBusyError, StoreError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "StoreLock", "check_timeout"]

logger = logging.getLogger(__name__)

LOCK_FILE = "jinarag.lock"
_POLL = 0.05  # seconds between tries while another process holds the lock


def check_timeout(value: object) -> float:
    """A lock timeout: seconds, a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InputError(f"lock_timeout must be seconds (a number >= 0), got {value!r}")
    return float(value)


class StoreLock:
    """An exclusive, inter-process lock on one store folder (a context manager).

    Args:
        folder: the store folder; the lock file ``jinarag.lock`` is made in it.
        timeout: seconds to wait for another writer before :class:`StoreBusyError`.

    Raises:
        StoreBusyError: another process held the lock for all of ``timeout`` seconds.
        StoreError: the lock file cannot be made (the folder is read-only or not a folder).
    """

    def __init__(self, folder: Path, timeout: float) -> None:
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, waiting up to :attr:`timeout` seconds (saying so once in the log)."""
        if fcntl is None:
            return
        fd = self._open()
        started = time.monotonic()
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    holder = self.holder()
                    os.close(fd)
                    raise StoreBusyError(
                        f"another process ({holder}) is writing to the store {self.folder} and "
                        f"held its write lock ({self.path}) for all of the {self.timeout:g} s "
                        "this call waited. Wait for it to finish and repeat the call, or pass "
                        "a larger lock_timeout= to HybridIndex; the lock is released as soon "
                        "as that process ends."
                    ) from None
                if not said:
                    logger.warning(
                        "waiting for the write lock on %s, held by %s (up to %g s)",
                        self.folder,
                        self.holder(),
                        self.timeout,
                    )
                    said = True
                time.sleep(min(_POLL, max(self.timeout - waited, 0.0)))
        self._fd = fd
        # Who holds it, for the messages of those who wait (the lock itself is the flock).
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(
                fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0
            )

    def release(self) -> None:
        """Give the lock back (closing the file releases it too)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (``"PID 123 on host since ..."``)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text.replace("pid", "PID", 1) if text else "PID unknown"

    def _open(self) -> int:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot make the write lock {self.path} ({exc.strerror or exc}): the store "
                f"folder {self.folder} must be a writable folder. Fix its permissions, or "
                "open a writable copy of the store."
            ) from exc
