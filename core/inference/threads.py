"""How many CPU threads a forward pass gets.

A thread pool pays for itself only on enough work: on small batches (one query, a handful of
short texts) waking and joining torch's threads costs more than it saves, and on a busy
machine a second thread that has to wait for a core makes a small pass several times slower
(measured in benchmarks/threads.py). So by default a pass of at most
:data:`SMALL_PASS_TOKENS` tokens runs on one thread, a larger one on all of torch's threads;
``num_threads=`` fixes the count instead.

torch's thread count is process-wide, so CPU passes that change it take turns (a lock):
two passes at once would only contend for the same cores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["SMALL_PASS_TOKENS", "pass_threads", "threads_for"]

# Tokens (rows × row length) up to which a pass runs on one thread.
SMALL_PASS_TOKENS = 1024

_LOCK = threading.RLock()


def threads_for(tokens: int, num_threads: int | None, default: int) -> int:
    """The policy: ``num_threads`` when given, else 1 for a small pass, else ``default``
    (torch's own count: the process's setting, OMP_NUM_THREADS, or the cores)."""
    if num_threads is not None:
        return num_threads
    return 1 if tokens <= SMALL_PASS_TOKENS else default


@contextmanager
def pass_threads(device: torch.device, tokens: int, num_threads: int | None) -> Iterator[None]:
    """Run the body with the policy's thread count (CPU only; a GPU pass is left alone)."""
    if device.type != "cpu":
        yield
        return
    with _LOCK:
        before = torch.get_num_threads()
        wanted = threads_for(tokens, num_threads, before)
        if wanted != before:
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
