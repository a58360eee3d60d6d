"""glibc allocator settings for worker processes: fewer arenas, and freed pages handed back after a snapshot load."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    # musl and other C libraries have neither function: then this module does nothing.
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_arenas(count: int) -> bool:
    """At most `count` malloc arenas in this process and the workers forked from it (MALLOC_ARENA_MAX).

    glibc gives each thread that allocates its own arena (up to 8 per core);
    the snapshot reload runs in a fresh thread each time, so without a limit
    every reload can leave its peak in another arena.
    """
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, count))


def trim() -> None:
    """Give the pages free()d since the last trim back to the kernel (malloc_trim).

    A snapshot load parses every item of the catalog; the peak (raw items,
    parsed items and Assets alive together) would otherwise stay in the
    worker's RSS (BENCHMARKS.md, worker RSS).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
