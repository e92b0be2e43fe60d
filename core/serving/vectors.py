"""How an embedding is written into a response: Jina's ``embedding_type`` and OpenAI's
``encoding_format``.

- ``float``: a JSON list of numbers.
- ``base64``: the little-endian float32 bytes, base64-encoded (what the ``openai`` client asks
  for by default, and decodes).
- ``binary`` / ``ubinary``: one bit per dimension, set where the value is positive, packed
  eight to a byte (``dim / 8`` numbers); ``ubinary`` as unsigned bytes (0..255), ``binary`` as
  the same bytes minus 128 (-128..127). This is Jina's encoding and sentence-transformers'
  ``quantize_embeddings(precision="binary" | "ubinary")``; clients unpack the bits with
  ``np.unpackbits`` (adding 128 back for ``binary``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

__all__ = ["ENCODINGS", "OPENAI_ENCODINGS", "encode_vectors"]

ENCODINGS = ("float", "base64", "binary", "ubinary")
OPENAI_ENCODINGS = ("float", "base64")


def encode_vectors(rows: np.ndarray, encoding: str) -> list[Any]:
    """Each row of ``rows`` (n, dim) in ``encoding``, ready for JSON."""
    if encoding == "float":
        return rows.tolist()
    if encoding == "base64":
        return [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in rows]
    packed = np.packbits(rows > 0, axis=-1)
    if encoding == "ubinary":
        return packed.tolist()
    assert encoding == "binary", encoding
    return (packed.astype(np.int16) - 128).tolist()
