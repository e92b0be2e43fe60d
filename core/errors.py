"""The exceptions jinarag raises.

Every message names the bad value and says how to fix it. The tree::

    JinaragError                    anything jinarag raises on purpose
    ├── ModelNotFoundError          no checkpoint at any place we looked (lists them)
    ├── CheckpointError             a checkpoint exists but is corrupt, incomplete or unsupported
    ├── InputError (ValueError)     a bad argument: wrong type, unknown choice, bad length
    └── StoreError                  the index or its vector store failed
        ├── StoreUnavailableError   the Chroma server cannot be reached
        └── EmbedderMismatchError   the collection was built with another embedder

Catch ``JinaragError`` to handle them all; ``InputError`` is also a ``ValueError`` so code
that already guards against ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "EmbedderMismatchError",
    "InputError",
    "JinaragError",
    "ModelNotFoundError",
    "StoreError",
    "StoreUnavailableError",
]


class JinaragError(Exception):
    """Base class of every error jinarag raises on purpose."""


class ModelNotFoundError(JinaragError):
    """No checkpoint was found for a name or path; the message lists every place tried."""


class CheckpointError(JinaragError):
    """A checkpoint was found but cannot be used (corrupt, half-written, wrong keys)."""


class InputError(JinaragError, ValueError):
    """An argument has the wrong type or value; the message names it and the valid choices."""


class StoreError(JinaragError):
    """The hybrid index or its vector store failed."""


class StoreUnavailableError(StoreError):
    """The Chroma server at a URL cannot be reached."""


class EmbedderMismatchError(StoreError):
    """A collection built with one embedder was opened with another."""
