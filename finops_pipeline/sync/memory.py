"""Give freed memory back to the OS, so a big window's peak is its live data, not the heap's.

Two allocators keep freed memory by default, and a 1M-row window load frees a lot of it
between steps (parse, normalise, digest, COPY batches):

- glibc raises its mmap threshold each time a large block is freed, after which large numpy
  and pandas buffers come from the heap, which it seldom shrinks. Pinning the threshold keeps
  them as mmaps, returned to the OS on free.
- pyarrow's default pool (mimalloc or jemalloc) caches freed pages; the system pool does not.

Measured on a 1M-row load (``benchmarks/load_case.py``), the two together lower the peak RSS
by about 100 MB. Both are process-wide and harmless to call more than once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow as pa

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, kept fixed


def return_freed_memory_to_os() -> None:
    """Pin glibc's mmap threshold and switch Arrow to the system allocator (best effort)."""
    pa.set_memory_pool(pa.system_memory_pool())
    library = ctypes.util.find_library("c")
    if library is None:
        return
    try:
        mallopt = ctypes.CDLL(library).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to pin
        return
    if not mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES):
        logger.debug("mallopt(M_MMAP_THRESHOLD) was refused; freed memory may stay mapped")
