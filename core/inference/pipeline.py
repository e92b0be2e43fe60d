"""The one path every model call takes: tokenise → schedule → encode → pool.

Inputs (texts, or query-document pairs) are tokenised a window at a time, the windows after
the first on a background thread, so the next window's tokens are ready while the model runs
on this one. Each window is scheduled into batches under the token budget
(:mod:`jinarag.inference.batching`), each batch is laid out in rows with numpy, moved to the
device (pinned memory on a GPU), run through the encoder to its last hidden states, and
reduced by a pooling head (:mod:`jinarag.inference.heads`). Pooled rows stay on the device
until the call ends: one transfer back, not one per batch.

On a device out-of-memory error the budget halves and the rest of the window is scheduled
again; when even one input alone does not fit, :class:`~jinarag.errors.DeviceMemoryError`
says which limit to set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch

from jinarag.errors import Cancelled, DeviceMemoryError, TruncationWarning, warn
from jinarag.inference.batching import Batch, schedule
from jinarag.inference.threads import pass_threads
from jinarag.models.tokenization import Encoded

__all__ = ["DeviceBatch", "Head", "RunSpec", "run"]

# Inputs tokenised per window: the first small, so the model starts early; then larger.
FIRST_WINDOW = 256
WINDOW = 4096


@dataclass(frozen=True)
class RunSpec:
    """Everything the pipeline needs of a model, built by the model for each call
    (:meth:`~jinarag.inference.pretrained.PretrainedModel.run_spec`): the pipeline reads nothing
    else, so it does not know the model classes."""

    # (input_ids, sequence_ids, token_type_ids, position_ids), each (R, L) -> hidden (R, L, H)
    encoder: Callable[..., torch.Tensor]
    device: torch.device
    pad_token_id: int
    max_length: int  # the truncation warning names it
    max_batch_tokens: int  # the token budget of one forward pass
    packed: bool  # several sequences per row (flex attention), else one per padded row
    num_threads: int | str | None  # the CPU thread policy (jinarag.inference.threads)


@dataclass(frozen=True)
class DeviceBatch:
    """One batch on the device, laid out as (rows, row length), with what heads need to find
    each sequence's tokens. Sequences are numbered 0..n-1 in the batch's row order."""

    input_ids: torch.Tensor  # R,L
    token_type_ids: torch.Tensor  # R,L
    sequence_ids: torch.Tensor  # R,L: 1, 2, … for the sequences of a row, 0 for padding
    position_ids: torch.Tensor  # R,L: position within the token's own sequence
    owner: torch.Tensor  # R·L: the batch-wide sequence number of each token, n for padding
    starts: torch.Tensor  # n: flat index (into R·L) of each sequence's first token
    lengths: torch.Tensor  # n: tokens per sequence
    index: torch.Tensor  # n: each sequence's input index in the call
    host_index: list[int]  # the same indices, on the host
    host_starts: np.ndarray  # the same starts, on the host

    @property
    def count(self) -> int:
        return self.starts.shape[0]


# A head maps (hidden states, batch) to (rows, targets): rows are added into the call's
# result at the row indices ``targets`` (one row per input for embeddings and relevance, one
# per chunk for late chunking, whose sums the pipeline accumulates across windows).
Head = Callable[[torch.Tensor, DeviceBatch], tuple[torch.Tensor, torch.Tensor]]


def lay_out(
    batch: Batch, encoded: Encoded, pad_token_id: int, device: torch.device, first: int = 0
) -> DeviceBatch:
    """The batch's tensors, built in numpy and moved in one transfer each; ``first`` is the
    call-wide index of the window's first input."""
    rows, length = len(batch.rows), batch.row_length
    input_ids = np.full((rows, length), pad_token_id, dtype=np.int64)
    token_type_ids = np.zeros((rows, length), dtype=np.int64)
    sequence_ids = np.zeros((rows, length), dtype=np.int64)
    position_ids = np.zeros((rows, length), dtype=np.int64)
    count = sum(len(row) for row in batch.rows)
    owner = np.full((rows, length), count, dtype=np.int64)
    starts = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    number = 0
    for r, row in enumerate(batch.rows):
        offset = 0
        for within, index in enumerate(row, start=1):
            ids = encoded.input_ids[index]
            end = offset + len(ids)
            input_ids[r, offset:end] = ids
            token_type_ids[r, offset:end] = encoded.token_type_ids[index]
            sequence_ids[r, offset:end] = within
            position_ids[r, offset:end] = np.arange(len(ids))
            owner[r, offset:end] = number
            starts[number] = r * length + offset
            lengths[number] = len(ids)
            number += 1
            offset = end
    host_index = [first + i for i in batch.sequences]
    arrays = (
        input_ids,
        token_type_ids,
        sequence_ids,
        position_ids,
        owner.reshape(-1),
        starts,
        lengths,
        np.asarray(host_index, dtype=np.int64),
    )
    pin = device.type == "cuda"
    tensors = []
    for array in arrays:
        tensor = torch.from_numpy(array)
        if pin:
            tensor = tensor.pin_memory()
        tensors.append(tensor.to(device, non_blocking=pin))
    return DeviceBatch(*tensors, host_index=host_index, host_starts=starts)


def _windows(count: int) -> Iterator[tuple[int, int]]:
    start, size = 0, FIRST_WINDOW
    while start < count:
        yield start, min(count, start + size)
        start, size = start + size, WINDOW


def run(
    spec: RunSpec,
    count: int,
    encode: Callable[[int, int], Encoded],
    head: Head,
    *,
    batch_size: int,
    what: str,
    show_progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
    outputs: int | None = None,
) -> np.ndarray:
    """The sums of ``head``'s rows per target row, ``outputs`` rows (default: one per input,
    in input order), as float32 numpy, each batch within ``spec.max_batch_tokens``.

    ``encode(start, stop)`` tokenises inputs ``start..stop-1``. A head may send rows it does
    not want to row ``outputs`` (one spare row, dropped at the end). ``should_stop`` is asked
    before each batch; when it returns True the run raises
    :class:`~jinarag.errors.Cancelled`.
    """
    outputs = count if outputs is None else outputs
    from tqdm.auto import tqdm

    device = spec.device
    results: torch.Tensor | None = None
    truncated: list[int] = []
    done = batches_run = 0
    budget = spec.max_batch_tokens
    windows = list(_windows(count))
    with (
        torch.inference_mode(),
        ExitStack() as stack,
        tqdm(total=count, disable=not show_progress, desc=what, unit=what.split()[-1]) as bar,
    ):
        # The first window is tokenised here (nothing runs meanwhile that it could overlap),
        # each next one on a background thread while the model runs on this one; a call of one
        # window (a query, a small batch) hands nothing to another thread.
        pool: ThreadPoolExecutor | None = None
        upcoming: Future[Encoded] | None = None
        for number, (start, stop) in enumerate(windows):
            encoded = encode(start, stop) if upcoming is None else upcoming.result()
            if number + 1 < len(windows):
                if pool is None:
                    pool = stack.enter_context(
                        ThreadPoolExecutor(max_workers=1, thread_name_prefix="jinarag-tokenize")
                    )
                upcoming = pool.submit(encode, *windows[number + 1])
            truncated += [start + i for i in encoded.truncated]
            lengths = [len(ids) for ids in encoded.input_ids]
            pending = schedule(
                lengths, max_tokens=budget, max_sequences=batch_size, packed=spec.packed
            )
            while pending:
                batch = pending.pop(0)
                if should_stop is not None and should_stop():
                    raise Cancelled(
                        f"stopped before batch {batches_run + 1}: should_stop() returned True "
                        f"after {done} of {count} {what}"
                    )
                try:
                    rows, targets = _forward(spec, batch, encoded, head, start)
                except torch.OutOfMemoryError as exc:
                    budget = _smaller_budget(spec, batch, budget, exc)
                    remaining = batch.sequences + [i for b in pending for i in b.sequences]
                    pending = schedule(
                        lengths,
                        max_tokens=budget,
                        max_sequences=batch_size,
                        packed=spec.packed,
                        indices=remaining,
                    )
                    continue
                if results is None:
                    results = torch.zeros(
                        (outputs + 1, *rows.shape[1:]), dtype=torch.float32, device=device
                    )
                results.index_add_(0, targets, rows.float())
                done += len(batch.sequences)
                batches_run += 1
                bar.update(len(batch.sequences))
    if truncated:
        _warn_truncated(truncated, count, spec.max_length, what)
    assert results is not None
    return results[:outputs].cpu().numpy()


def _forward(
    spec: RunSpec, batch: Batch, encoded: Encoded, head: Head, offset: int
) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = lay_out(batch, encoded, spec.pad_token_id, spec.device, offset)
    with pass_threads(spec.device, batch.tokens, spec.num_threads):
        hidden = spec.encoder(
            tensors.input_ids, tensors.sequence_ids, tensors.token_type_ids, tensors.position_ids
        )
        return head(hidden, tensors)


def _smaller_budget(spec: RunSpec, batch: Batch, budget: int, exc: torch.OutOfMemoryError) -> int:
    """Half the budget, or DeviceMemoryError when the failing batch was a single input."""
    if spec.device.type == "cuda":
        torch.cuda.empty_cache()
    halved = max(1, min(budget, batch.tokens) // 2)
    if len(batch.sequences) == 1:
        raise DeviceMemoryError(
            f"Out of memory on {spec.device} for a single input of {batch.row_length} tokens "
            f"(max_batch_tokens={budget}). Pass a shorter max_length (e.g. "
            f"max_length={max(4, batch.row_length // 2)}), dtype='float16', or a device with "
            "more free memory."
        ) from exc
    warn(
        f"Out of memory on {spec.device} with {batch.tokens} tokens in a batch; retrying with "
        f"max_batch_tokens={halved}. Pass max_batch_tokens={halved} (or lower) to start there.",
        RuntimeWarning,
    )
    return halved


def _warn_truncated(truncated: list[int], count: int, max_length: int, what: str) -> None:
    first = ", ".join(str(i) for i in truncated[:5])
    more = " …" if len(truncated) > 5 else ""
    warning = TruncationWarning(
        len(truncated),
        count,
        max_length,
        what,
        detail=f" (indices {first}{more}). Pass truncate=False to get an error instead, "
        "or split long texts into chunks.",
    )
    warn(warning)  # attributed to the caller's line, outside jinarag
