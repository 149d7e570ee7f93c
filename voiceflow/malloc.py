"""The C allocator's settings that bound voiceflow's memory (glibc; no-ops elsewhere).

glibc gives each thread that allocates an arena of its own and keeps what is freed there for
reuse. Whisper's encoder needs ~150 MB of attention buffers for a 30 s window for a moment, so
every thread that has run it holds ~70 MB afterwards: with two decoders and the voice-activity
thread, peak RSS grew by 90 MB on a 52 s recording and 120 MB over 25 short clips
(docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

_M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc alone has it)
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas(n: int = 1) -> None:
    """Threads created from now on share ``n`` arenas, unless ``MALLOC_ARENA_MAX`` says
    otherwise. For a program, before it starts threads: it changes the whole process."""
    libc = _glibc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, n)


def trim() -> None:
    """Give the free memory of every arena back to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
