"""Length-sorted batching: similar lengths share a batch, and results come back in input order.

Sorting by token count (not characters) keeps padding small; a token budget per batch keeps
long inputs from exhausting memory however large ``batch_size`` is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["length_sorted_batches", "pad"]

# Padded tokens per batch (batch rows × longest row). 32 × 512 = 16384.
DEFAULT_MAX_BATCH_TOKENS = 16384


def length_sorted_batches(
    lengths: Sequence[int], *, batch_size: int, max_tokens: int = DEFAULT_MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Group input indices, longest first, into batches of at most ``batch_size`` rows and
    ``max_tokens`` padded tokens (a single longer input still gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted descending, so the first row of a batch is its longest.
        longest = lengths[current[0]] if current else lengths[index]
        if current and (len(current) >= batch_size or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad(rows: Sequence[Sequence[int]], pad_value: int, device: torch.device) -> torch.Tensor:
    """Right-pad integer rows into a (len(rows), longest) tensor."""
    longest = max(len(row) for row in rows)
    out = torch.full((len(rows), longest), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(device)
