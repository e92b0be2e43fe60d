"""Keep freed memory for reuse: for processes jinarag owns (the CLI and the server).

glibc's malloc serves large blocks with fresh mappings and gives the top of its heap back to
the system when it is freed, so each forward pass's large activations
are new pages that the kernel zero-fills on first touch. On CPU inference that page-faulting
costs 10-20% of the time (measured: docs/performance.md). Raising the thresholds keeps those
blocks in the heap for the next pass. The server still hands memory back after large
requests (``malloc_trim``, serving/guard.py).

Only the command-line entry points call :func:`keep_freed_memory`: a library should not
change the allocator of the process that imports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20  # blocks up to 32 MiB (glibc's maximum) come from the heap
TRIM_THRESHOLD = (1 << 31) - 1  # free memory at the heap's top is kept up to 2 GiB
TOP_PAD = 256 << 20  # the heap grows 256 MiB at a time


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above; False (and nothing changed) on another C library."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    results = [
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        mallopt(_M_TOP_PAD, TOP_PAD),
    ]
    return all(result == 1 for result in results)
