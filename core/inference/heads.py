"""Pooling heads: what a batch's token-level hidden states (rows, row length, H) become.

Each head returns one row per sequence, in the batch's sequence order
(:attr:`jinarag.inference.batching.Batch.sequences`), computed on the device in float32.
They read the sequences through :class:`~jinarag.inference.pipeline.DeviceBatch`, so packed
and padded rows pool alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

if TYPE_CHECKING:
    from jinarag.inference.pipeline import DeviceBatch

__all__ = ["first_tokens", "l2_normalize", "mean_pool", "span_sums"]

Rows = TypeVar("Rows", np.ndarray, torch.Tensor)
# A row's norm is clamped to this before dividing: a zero row stays zero (torch's F.normalize).
NORM_EPS = 1e-12


def l2_normalize(rows: Rows) -> Rows:
    """Each row (the last axis) divided by its L2 norm, a zero row left zero: the one
    normalisation of every embedding, pooled on the device (a tensor) or summed on the host (a
    numpy array: late chunking, the server)."""
    if isinstance(rows, torch.Tensor):
        return rows / rows.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), NORM_EPS)


def mean_pool(
    hidden: torch.Tensor, batch: DeviceBatch, *, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean of each sequence's token states (n, H), L2-normalised when asked, one row per
    input."""
    flat = hidden.reshape(-1, hidden.shape[-1]).float()
    sums = torch.zeros((batch.count + 1, flat.shape[1]), dtype=torch.float32, device=flat.device)
    sums.index_add_(0, batch.owner, flat)  # padding lands in the extra last row
    pooled = sums[:-1] / batch.lengths[:, None].to(torch.float32)
    return (l2_normalize(pooled) if normalize else pooled), batch.index


def first_tokens(hidden: torch.Tensor, batch: DeviceBatch) -> torch.Tensor:
    """Each sequence's first-token ([CLS]) state (n, H)."""
    return hidden.reshape(-1, hidden.shape[-1])[batch.starts]


def span_sums(
    hidden: torch.Tensor,
    batch: DeviceBatch,
    segments: Sequence[Sequence[tuple[int, int, int]]],
    spare: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: its state and a 1 (H + 1 columns), sent to the output row its sequence's
    ``segments[input] = [(first, end, row), ...]`` give it (other tokens to row ``spare``).
    Summed by the pipeline, a row's last column counts its tokens: the mean is one division
    away, however many windows and batches the row's tokens came from (late chunking)."""
    flat = hidden.reshape(-1, hidden.shape[-1]).float()
    targets = np.full(flat.shape[0], spare, dtype=np.int64)
    for start, index in zip(batch.host_starts.tolist(), batch.host_index, strict=True):
        for first, end, row in segments[index]:
            targets[start + first : start + end] = row
    ones = torch.ones((flat.shape[0], 1), dtype=torch.float32, device=flat.device)
    return torch.cat([flat, ones], dim=1), torch.from_numpy(targets).to(flat.device)
