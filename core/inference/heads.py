"""Pooling heads: what a batch's token-level hidden states (rows, row length, H) become.

Each head returns one row per sequence, in the batch's sequence order
(:attr:`jinarag.inference.batching.Batch.sequences`), computed on the device in float32.
They read the sequences through :class:`~jinarag.inference.pipeline.DeviceBatch`, so packed
and padded rows pool alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from jinarag.inference.pipeline import DeviceBatch

__all__ = ["first_tokens", "mean_pool"]


def mean_pool(hidden: torch.Tensor, batch: DeviceBatch, *, normalize: bool) -> torch.Tensor:
    """The mean of each sequence's token states (n, H), L2-normalised when asked."""
    flat = hidden.reshape(-1, hidden.shape[-1]).float()
    sums = torch.zeros((batch.count + 1, flat.shape[1]), dtype=torch.float32, device=flat.device)
    sums.index_add_(0, batch.owner, flat)  # padding lands in the extra last row
    pooled = sums[:-1] / batch.lengths[:, None].to(torch.float32)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def first_tokens(hidden: torch.Tensor, batch: DeviceBatch) -> torch.Tensor:
    """Each sequence's first-token ([CLS]) state (n, H)."""
    return hidden.reshape(-1, hidden.shape[-1])[batch.starts]
