"""How many CPU threads a forward pass gets: measured, not guessed.

Which is faster depends on the machine's load more than on the pass: on two quiet cores a
second thread makes a single query 1.5-2x faster, while with one other busy process the same
second thread, waiting for a core, makes every pass slower (0.6-0.8x) and a small one's p95
several times worse (benchmarks/threads.py; figures in docs/performance.md).

- ``num_threads=None`` (the default): torch's own count, the one the caller set. Results are
  then reproducible to the bit: MKL's kernels for small matrices round differently at
  different thread counts (by about 1e-7), so a policy that switches counts would make the
  same query give slightly different vectors from one call to the next.
- ``num_threads="auto"``: the engine tries both, for each size of pass (tokens, in powers of
  two): torch's own thread count and one thread. It keeps a moving average of seconds per token
  for each, uses the faster, and tries the other again every :data:`EXPLORE_EVERY` passes of that
  size (every 64th when it was a quarter or more slower), so a machine that becomes busy, or
  quiet again, is followed within a few dozen passes. For servers and bulk jobs on shared
  machines, where latency matters more than the last bit.
- ``num_threads=N``: exactly N.

torch's thread count is process-wide, so CPU passes take turns (a lock): two passes at once
would only contend for the same cores. The engine leaves the count as its last pass set it
(see :func:`pass_threads`); pass ``num_threads=`` to pin it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["EXPLORE_EVERY", "ThreadChooser", "pass_threads"]

# Every this many passes of a size, the slower thread count is measured again.
EXPLORE_EVERY = 16
# Weight of the newest measurement in the moving average.
SMOOTHING = 0.5

_LOCK = threading.RLock()


class ThreadChooser:
    """The adaptive policy: per size bucket, the thread count with the lower moving average
    of seconds per token, the other tried again every ``explore_every`` passes."""

    def __init__(self, explore_every: int = EXPLORE_EVERY) -> None:
        self.explore_every = explore_every
        self.cost: dict[tuple[int, int], float] = {}  # (bucket, threads) -> s per token
        self.passes: dict[int, int] = {}

    @staticmethod
    def bucket(tokens: int) -> int:
        return max(0, tokens - 1).bit_length()

    def pick(self, tokens: int, default: int) -> int:
        candidates = [default, 1] if default > 1 else [1]
        bucket = self.bucket(tokens)
        untried = [n for n in candidates if (bucket, n) not in self.cost]
        if untried:
            return untried[0]
        ranked = sorted(candidates, key=lambda n: self.cost[(bucket, n)])
        if len(ranked) == 1:
            return ranked[0]
        # A clearly slower count (by a quarter or more) is re-tried four times less often:
        # each try costs a slow pass.
        gap = self.cost[(bucket, ranked[1])] / max(self.cost[(bucket, ranked[0])], 1e-12)
        every = self.explore_every * (4 if gap >= 1.25 else 1)
        count = self.passes.get(bucket, 0)
        return ranked[1] if count % every == every - 1 else ranked[0]

    def record(self, tokens: int, threads: int, seconds: float) -> None:
        bucket = self.bucket(tokens)
        per_token = seconds / max(1, tokens)
        key = (bucket, threads)
        old = self.cost.get(key)
        self.cost[key] = per_token if old is None else old + SMOOTHING * (per_token - old)
        self.passes[bucket] = self.passes.get(bucket, 0) + 1


CHOOSER = ThreadChooser()


_APPLIED: list[int] = []  # the count the engine last set, to tell it from the caller's own


@contextmanager
def pass_threads(
    device: torch.device, tokens: int, num_threads: int | str | None
) -> Iterator[None]:
    """Run the body (one forward pass of ``tokens`` tokens) on the policy's thread count, and
    time it for the policy (CPU only; a GPU pass is left alone).

    The count is left as the pass set it: switching back and forth on every pass wakes and
    parks OpenMP's workers each time, which on a busy machine cost more than a whole small
    pass. torch's own count (the baseline the policy compares with one thread) is the one the
    caller last set."""
    if device.type != "cpu":
        yield
        return
    with _LOCK:
        current = torch.get_num_threads()
        if not _APPLIED or current != _APPLIED[-1]:
            _DEFAULTS[:] = [current]  # first pass, or the caller changed it since
        if num_threads == "auto":
            wanted = CHOOSER.pick(tokens, _DEFAULTS[0])
        else:
            wanted = _DEFAULTS[0] if num_threads is None else int(num_threads)
        if wanted != current:
            torch.set_num_threads(wanted)
        _APPLIED[:] = [wanted]
        started = time.perf_counter()
        yield
        if num_threads == "auto":
            CHOOSER.record(tokens, wanted, time.perf_counter() - started)


_DEFAULTS: list[int] = []  # torch's own thread count, as the caller set it
