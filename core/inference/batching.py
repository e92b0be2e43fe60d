"""Scheduling: which tokenised sequences share a forward pass, and how they sit in its rows.

Two layouts, one rule (a token budget per pass, ``rows × row length``):

- padded: one sequence per row, longest first, so a batch's rows have similar lengths and
  little padding (the CPU layout: attention cost stays ``Σ length²``);
- packed: several sequences per row, first-fit decreasing into rows of a fixed length, with
  no padding but a row's tail (the flex-attention layout: its block mask skips the pairs of
  tokens from different sequences, and fixed row shapes let a compiled kernel be reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "Batch",
    "default_max_batch_tokens",
    "pass_budget",
    "schedule",
    "within_budget",
]

# Tokens per forward pass (rows × row length). CPU: 32 × 512; a GPU has memory for more.
DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_MAX_BATCH_TOKENS_GPU = 65536
# Packed rows are at least this long (or the longest sequence), rounded up to ROW_MULTIPLE:
# long enough to hold many short texts, and a multiple of flex attention's 128-token blocks.
PACKED_ROW_TOKENS = 2048
ROW_MULTIPLE = 128


def default_max_batch_tokens(device: torch.device) -> int:
    return DEFAULT_MAX_BATCH_TOKENS if device.type == "cpu" else DEFAULT_MAX_BATCH_TOKENS_GPU


def pass_budget(device: torch.device, max_batch_tokens: int, cpu_pass_tokens: int | None) -> int:
    """The token budget of one forward pass: ``max_batch_tokens``, at most ``cpu_pass_tokens``
    on a CPU (where smaller passes of mixed lengths measured faster; a GPU takes the whole
    budget)."""
    if device.type == "cpu" and cpu_pass_tokens is not None:
        return min(cpu_pass_tokens, max_batch_tokens)
    return max_batch_tokens


def within_budget(
    lengths: Sequence[int], start: int, max_tokens: int, *, first: bool
) -> tuple[int, int]:
    """``(stop, tokens)``: the sequences ``start..stop-1``, taken in order, whose ``lengths``
    sum to at most ``max_tokens``, and that sum. With ``first``, at least one sequence even
    when it alone is over (it then runs alone, as :func:`schedule` runs it). The server cuts
    a large request into engine calls with it, so the budget is counted one way everywhere."""
    stop, tokens = start, 0
    while stop < len(lengths):
        if tokens + lengths[stop] > max_tokens and not (first and stop == start):
            break
        tokens += lengths[stop]
        stop += 1
    return stop, tokens


@dataclass(frozen=True)
class Batch:
    """One forward pass: ``rows[r]`` lists the sequences (input indices) laid out in row r,
    left to right; every row is ``row_length`` tokens long."""

    rows: tuple[tuple[int, ...], ...]
    row_length: int

    @property
    def sequences(self) -> list[int]:
        """The batch's sequences in row order: the order a pooling head returns them in."""
        return [index for row in self.rows for index in row]

    @property
    def tokens(self) -> int:
        return len(self.rows) * self.row_length


def schedule(
    lengths: Sequence[int],
    *,
    max_tokens: int,
    max_sequences: int,
    packed: bool,
    indices: Sequence[int] | None = None,
) -> list[Batch]:
    """Batches covering ``indices`` (default: all of ``lengths``), longest first, each within
    ``max_tokens`` and ``max_sequences``. A single sequence longer than ``max_tokens`` still
    gets a batch of its own."""
    order = sorted(
        indices if indices is not None else range(len(lengths)),
        key=lambda i: lengths[i],
        reverse=True,
    )
    if not order:
        return []
    if packed:
        return _packed(order, lengths, max_tokens, max_sequences)
    batches: list[Batch] = []
    current: list[int] = []
    for index in order:
        # Sorted descending, so the first row of a batch is its longest.
        longest = lengths[current[0]] if current else lengths[index]
        if current and (len(current) >= max_sequences or (len(current) + 1) * longest > max_tokens):
            batches.append(Batch(tuple((i,) for i in current), lengths[current[0]]))
            current = []
        current.append(index)
    batches.append(Batch(tuple((i,) for i in current), lengths[current[0]]))
    return batches


def _packed(
    order: list[int], lengths: Sequence[int], max_tokens: int, max_sequences: int
) -> list[Batch]:
    # A sequence longer than the budget runs alone, in a row of its own length.
    alone = [Batch(((i,),), lengths[i]) for i in order if lengths[i] > max_tokens]
    order = [i for i in order if lengths[i] <= max_tokens]
    if not order:
        return alone
    row_length = max(lengths[order[0]], min(max_tokens, PACKED_ROW_TOKENS))
    rounded = -(-row_length // ROW_MULTIPLE) * ROW_MULTIPLE
    if rounded <= max_tokens:  # rounding never takes a row past the budget
        row_length = rounded
    max_rows = max_tokens // row_length  # at least 1: row_length <= max_tokens
    batches: list[Batch] = []
    rows: list[list[int]] = []
    free: list[int] = []
    count = 0
    for index in order:
        need = lengths[index]
        # First fit: the first row with room, else a new row, else a new batch.
        target = next((r for r, room in enumerate(free) if room >= need), None)
        if count >= max_sequences or (target is None and len(rows) >= max_rows):
            batches.append(Batch(tuple(map(tuple, rows)), row_length))
            rows, free, count, target = [], [], 0, None
        if target is None:
            rows.append([])
            free.append(row_length)
            target = len(rows) - 1
        rows[target].append(index)
        free[target] -= need
        count += 1
    batches.append(Batch(tuple(map(tuple, rows)), row_length))
    # Row counts rounded up to a power of two (empty rows are padding; never past the
    # budget): a compiled kernel meets a handful of shapes, not one per batch size.
    padded = []
    for batch in batches:
        rows_wanted = max(len(batch.rows), min(_next_power_of_two(len(batch.rows)), max_rows))
        empty = ((),) * (rows_wanted - len(batch.rows))
        padded.append(Batch(batch.rows + empty, row_length))
    return alone + padded


def _next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()
