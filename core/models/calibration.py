"""What int8 calibration reads: texts shipped with jinarag, tokenised as the model reads them.

A post-training quantiser runs the float model over a few hundred inputs to learn the range of
each activation. jinarag ships its own text for this (``jinarag/data/demo_corpus.jsonl``: 300
aeronautics abstracts of the public Cranfield collection, the demo's corpus), so calibration
needs no download: the first :data:`CALIBRATION_SAMPLES` abstracts for an embedder, and as many
(title, abstract) pairs, half matching and half not, for a reranker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from jinarag.models.tokenization import Encoded, TextTokenizer

__all__ = ["CALIBRATION_SAMPLES", "CALIBRATION_TOKENS", "Calibration", "shipped_calibration"]

CALIBRATION_SAMPLES = 128
# Tokens per calibration input (longer abstracts are cut): the lengths retrieval reads.
CALIBRATION_TOKENS = 256
_FILE = "data/demo_corpus.jsonl"


@dataclass(frozen=True)
class Calibration:
    """Calibration inputs of one kind of model, and a digest that names them in cache keys."""

    texts: list[str]
    pairs: list[tuple[str, str]]
    digest: str

    def samples(
        self, tokenizer: TextTokenizer, *, kind: str, max_length: int
    ) -> list[dict[str, np.ndarray]]:
        """One input per sample, as the exported encoder takes it (a row of shape (1, L))."""
        length = min(max_length, CALIBRATION_TOKENS)
        if kind == "reranker":
            encoded = tokenizer.encode_pair_list(self.pairs, max_length=length)
        else:
            encoded = tokenizer.encode(self.texts, max_length=length)
        return [_row(encoded, index) for index in range(len(encoded))]


def _row(encoded: Encoded, index: int) -> dict[str, np.ndarray]:
    ids = np.asarray([encoded.input_ids[index]], dtype=np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.asarray([encoded.token_type_ids[index]], dtype=np.int64),
        "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None],
    }


def shipped_calibration(samples: int = CALIBRATION_SAMPLES) -> Calibration:
    """The calibration inputs jinarag ships (see the module docstring)."""
    raw = resources.files("jinarag").joinpath(_FILE).read_bytes()
    records = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    records = records[: samples + 1]
    texts = [record["text"] for record in records[:samples]]  # each text opens with its title
    pairs = [
        (records[i]["title"], records[i if i % 2 == 0 else i + 1]["text"]) for i in range(samples)
    ]
    digest = hashlib.sha256(raw + f"|{samples}|{CALIBRATION_TOKENS}".encode()).hexdigest()
    return Calibration(texts, pairs, digest)
