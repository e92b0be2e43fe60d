"""The exceptions jinarag raises.

Every message names the bad value and says how to fix it. The tree::

    JinaragError                    anything jinarag raises on purpose
    ├── ModelNotFoundError          no checkpoint at any place we looked (lists them)
    ├── CheckpointError             a checkpoint exists but is corrupt, incomplete or unsupported
    ├── InputError (ValueError)     a bad argument: wrong type, unknown choice, bad length
    ├── DeviceMemoryError           the device ran out of memory even after smaller batches
    ├── RemoteError                 a jinarag server cannot be reached, timed out or failed (5xx)
    ├── Cancelled                   a run stopped because its ``stop()`` said so (nothing was wrong)
    └── StoreError                  the index or its vector store failed
        ├── StoreUnavailableError   the Chroma server cannot be reached
        ├── StoreBusyError          another process is writing to the same store
        ├── StoreCorruptError       the store on disk is damaged or incomplete (says how to repair)
        │   └── StoreMismatchError  the database lacks records its BM25 snapshot lists (lost)
        └── EmbedderMismatchError   the collection was built with another embedder

    TruncationWarning (UserWarning) inputs longer than max_length were cut (a warning only)
    CheckpointWarning (UserWarning) a checkpoint loads, but likely not as meant (a cross-encoder
                                    loaded as an Embedder)
    PerformanceWarning (UserWarning) results are right but a pass runs far slower than it should
                                    (flex attention past torch's recompile limit)

Catch ``JinaragError`` to handle them all; ``InputError`` is also a ``ValueError`` so code
that already guards against ``ValueError`` keeps working.

Warnings are issued with :func:`warn`, which attributes them to the first line outside
jinarag (the line that called ``embed``, ``from_pretrained`` or an adapter), however deep in
the package they arise.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = [
    "Cancelled",
    "CheckpointError",
    "CheckpointWarning",
    "DeviceMemoryError",
    "EmbedderMismatchError",
    "InputError",
    "JinaragError",
    "ModelNotFoundError",
    "PerformanceWarning",
    "RemoteError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreMismatchError",
    "StoreUnavailableError",
    "TruncationWarning",
]


class JinaragError(Exception):
    """Base class of every error jinarag raises on purpose."""


class ModelNotFoundError(JinaragError):
    """No checkpoint was found for a name or path; the message lists every place tried."""


class CheckpointError(JinaragError):
    """A checkpoint was found but cannot be used (corrupt, half-written, wrong keys)."""


class InputError(JinaragError, ValueError):
    """An argument has the wrong type or value; the message names it and the valid choices."""


class DeviceMemoryError(JinaragError):
    """Out of device memory although the batch's token budget was halved down to what a
    single input needs; the message says which budget or length to set."""


class RemoteError(JinaragError):
    """A ``jinarag serve`` server could not be reached, did not answer in time, answered with a
    server error (5xx) or with something that is not its API; the message names the URL and
    the fix. A request the server refuses (4xx) is an :class:`InputError` instead."""


class Cancelled(JinaragError):
    """A run stopped because its ``stop()`` (or ``should_stop()``) returned True: the server
    passes one that turns True when the client disconnects or the server shuts down; a
    training run saves its state first, so running it again resumes. Nothing was wrong with
    the input: the message says where the run stopped."""


class StoreError(JinaragError):
    """The hybrid index or its vector store failed."""


class StoreUnavailableError(StoreError):
    """The Chroma server at a URL cannot be reached."""


class StoreBusyError(StoreError):
    """Another process holds the store's write lock and did not release it in time."""


class StoreCorruptError(StoreError):
    """The store on disk (Chroma's files or the BM25 snapshot) is damaged, missing or altered;
    the message names the path and the repair (``jinarag verify STORE --repair``, or restore)."""


class StoreMismatchError(StoreCorruptError):
    """Chroma's database lacks records that the store's BM25 snapshot lists (the database was
    emptied, replaced or cut): opening it would serve an index silently missing them.
    ``snapshot`` is the snapshot's path; ``jinarag verify STORE --repair`` sets it aside and
    keeps what the database holds."""

    def __init__(self, message: str, snapshot: os.PathLike[str] | str | None = None) -> None:
        super().__init__(message)
        self.snapshot = snapshot

    def __reduce__(self) -> tuple[object, ...]:  # picklable across processes (Ray, verify)
        return (type(self), (str(self), self.snapshot))


class EmbedderMismatchError(StoreError):
    """A collection built with one embedder was opened with another."""


class TruncationWarning(UserWarning):
    """Some inputs were longer than ``max_length`` tokens and were cut to it.

    Besides the message it carries the numbers, for code that reports them: ``count`` of
    ``total`` inputs (``what``: "texts", "documents") were cut at ``max_length`` tokens;
    ``summary`` says so in one line. Filter it by category, e.g.
    ``warnings.simplefilter("ignore", jinarag.TruncationWarning)``.
    """

    def __init__(
        self, count: int, total: int, max_length: int, what: str = "inputs", detail: str = ""
    ) -> None:
        self.count = count
        self.total = total
        self.max_length = max_length
        self.what = what
        self.detail = detail
        super().__init__(self.summary + detail)

    @property
    def summary(self) -> str:
        """One line, e.g. '3 of 40 texts exceeded max_length=512 tokens and were truncated'."""
        return (
            f"{self.count} of {self.total} {self.what} exceeded max_length={self.max_length} "
            "tokens and were truncated"
        )

    def __reduce__(self) -> tuple[type, tuple]:
        return type(self), (self.count, self.total, self.max_length, self.what, self.detail)


class CheckpointWarning(UserWarning):
    """A checkpoint loaded, but probably not the way it was meant to be used (a cross-encoder
    loaded as an ``Embedder``). Filter it by category when the use is intended:
    ``warnings.simplefilter("ignore", jinarag.CheckpointWarning)``."""


class PerformanceWarning(UserWarning):
    """Results stay right, but passes run far slower than they should: compiled flex
    attention met more shapes than torch's recompile limit allows, so new shapes run
    uncompiled. The message names the fix (fewer distinct shapes, a higher limit, or
    ``attention="sdpa"``)."""


def warn(message: Warning | str, category: type[Warning] | None = None) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside jinarag's
    packages (the core and the installed integrations): the user's line, whichever public
    method or adapter it called and however many frames of ours lie between.

    Python 3.12 and later skip our frames with ``skip_file_prefixes``; before that, the frames
    are walked here and counted into ``stacklevel`` (importlib's frames are not counted, as
    ``warnings`` does not count them).
    """
    prefixes = _package_dirs()
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=prefixes)  # type: ignore[call-arg]
        return
    frame = sys._getframe(0)  # this function: stacklevel 1
    level = 1
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(prefixes) or _bootstrap(frame.f_code.co_filename)
    ):
        frame = frame.f_back
        if not _bootstrap(frame.f_code.co_filename):
            level += 1
    warnings.warn(message, category, stacklevel=level)


def _package_dirs() -> tuple[str, ...]:
    """The directories of ``jinarag`` and of its loaded subpackages that live elsewhere (the
    integrations install as ``jinarag.<framework>`` from their own directory), each ending
    with a separator."""
    dirs = set()
    for name, module in list(sys.modules.items()):
        if name == "jinarag" or name.startswith("jinarag."):
            dirs.update(os.path.join(path, "") for path in getattr(module, "__path__", ()))
    return tuple(sorted(dirs))


def _bootstrap(filename: str) -> bool:
    """importlib's own frames, which ``warnings`` skips when it counts ``stacklevel``."""
    return "importlib" in filename and "_bootstrap" in filename
