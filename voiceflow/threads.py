"""Daemon threads that exit cleanly.

Blocking work runs on daemon threads so that a call that never returns cannot keep the
program from exiting. But a daemon thread still running when the interpreter finalises is
stopped the next time it takes the GIL, and if that happens inside a native destructor (a
torch tensor freed as the thread drops its locals) the C++ runtime aborts the process:
"terminate called without an active exception", exit code -6, after the work was done.
A thread that has finished its work and is only letting go of it calls ``finishing()``,
and one told to stop is named to ``wait_at_exit``; exit waits for those threads, never for
one still at work.
"""

from __future__ import annotations

import atexit
import threading
import weakref

_finishing: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_FINISH_WAIT_S = 10.0


def finishing() -> None:
    """The calling thread's work is done: the interpreter waits for it before finalising."""
    wait_at_exit(threading.current_thread())


def wait_at_exit(thread: threading.Thread) -> None:
    """The interpreter waits for ``thread`` before finalising: one that has done its work,
    or has been told to stop and will at its next step."""
    _finishing.add(thread)


@atexit.register
def _wait_for_finishing_threads() -> None:
    for thread in list(_finishing):
        if thread is not threading.current_thread():
            thread.join(_FINISH_WAIT_S)
