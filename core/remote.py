"""Where the remote models used to live: ``from jinarag.remote import RemoteEmbedder`` keeps
working. They live in :mod:`jinarag.inference.remote`, beside the local models."""

from jinarag.inference.remote import (
    API_KEY_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_TIMEOUT,
    RemoteEmbedder,
    RemoteModel,
    RemoteReranker,
    connect,
    server_root,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "RemoteEmbedder",
    "RemoteModel",
    "RemoteReranker",
    "connect",
    "server_root",
]
