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
import orjson

__all__ = ["ENCODINGS", "OPENAI_ENCODINGS", "dumps", "encode_vectors"]

ENCODINGS = ("float", "base64", "binary", "ubinary")
OPENAI_ENCODINGS = ("float", "base64")


def encode_vectors(rows: np.ndarray, encoding: str) -> Any:
    """Each row of ``rows`` (n, dim) in ``encoding``, for :func:`dumps`: float32 rows stay an
    array (written by orjson, several times faster than floats through the json module)."""
    if encoding == "float":
        return rows.astype(np.float32, copy=False)
    if encoding == "base64":
        return [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in rows]
    packed = np.packbits(rows > 0, axis=-1)
    if encoding == "ubinary":
        return packed.tolist()
    assert encoding == "binary", encoding
    return (packed.astype(np.int16) - 128).tolist()


def dumps(payload: Any) -> bytes:
    """``payload`` as JSON bytes; numpy arrays in it become lists (float32 written as the
    shortest decimal that reads back to the same float32)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
