"""The write lock of a store folder: one writer at a time, across processes.

Chroma's embedded store is not safe for two writers: each process keeps its own copy of the
vector index in memory and writes it back over the other's, so records vanish from dense
search while every count still looks right. :class:`StoreLock` serialises writers with
``filelock``'s operating-system lock on ``jinarag.lock`` inside the store folder (``flock`` on
POSIX, ``msvcrt.locking`` on Windows). The operating system releases it when the holder exits
or is killed, so a crashed writer never leaves a stale lock behind. The holder writes its PID
into ``jinarag.lock.holder``, for the messages of those waiting.

Readers do not take it.

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
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from jinarag.errors import InputError, StoreBusyError, StoreError

__all__ = ["HOLDER_FILE", "LOCK_FILE", "StoreLock", "check_timeout"]

logger = logging.getLogger(__name__)

LOCK_FILE = "jinarag.lock"
HOLDER_FILE = "jinarag.lock.holder"  # who holds the lock (the lock file itself stays empty)
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
        self._lock: FileLock | None = None

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
        lock = self._make()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.warning(
                "waiting for the write lock on %s, held by %s (up to %g s)",
                self.folder,
                self.holder(),
                self.timeout,
            )
            try:
                lock.acquire(timeout=self.timeout, poll_interval=_POLL)
            except Timeout:
                raise StoreBusyError(
                    f"another process ({self.holder()}) is writing to the store {self.folder} "
                    f"and held its write lock ({self.path}) for all of the {self.timeout:g} s "
                    "this call waited. Wait for it to finish and repeat the call, or pass a "
                    "larger lock_timeout= to HybridIndex; the lock is released as soon as that "
                    "process ends."
                ) from None
        except OSError as exc:
            raise self._unwritable(exc) from exc
        self._lock = lock
        # Who holds it, for the messages of those who wait (the lock itself is the OS lock).
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with contextlib.suppress(OSError):
            (self.folder / HOLDER_FILE).write_text(
                f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n", encoding="utf-8"
            )

    def release(self) -> None:
        """Give the lock back."""
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        with contextlib.suppress(OSError):
            (self.folder / HOLDER_FILE).write_text("", encoding="utf-8")
        lock.release(force=True)

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (``"PID 123 on host since ..."``)."""
        try:
            text = (self.folder / HOLDER_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        text = text.strip()
        return text.replace("pid", "PID", 1) if text else "PID unknown"

    def _make(self) -> FileLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        # One lock object per acquisition: two StoreLocks of one process exclude each other
        # as two processes do (filelock would otherwise share one re-entrant lock per path).
        return FileLock(self.path, is_singleton=False, thread_local=False)

    def _unwritable(self, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot make the write lock {self.path} ({exc.strerror or exc}): the store "
            f"folder {self.folder} must be a writable folder. Fix its permissions, or "
            "open a writable copy of the store."
        )
