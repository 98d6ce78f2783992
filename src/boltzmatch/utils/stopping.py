"""Stopping long work at a consistent point: SIGINT/SIGTERM and the desktop app's Stop only set a flag, and
the work's own loop stops between steps.

A signal handler that raises (Python's default KeyboardInterrupt, the CLI's SIGTERM) raises wherever the main
thread happens to be, and where that is a destructor or a cffi callback (tblite frees its error objects in
one) Python prints "Exception ignored …" and carries on: the command would run to its end. A flag cannot be
lost that way.
"""

from __future__ import annotations

import signal
import threading

from .progress import Cancelled, current_observer


class DeferredStop:
    """Within the block, SIGINT and SIGTERM (main thread) or the thread's progress observer's stop
    request (the desktop app) only set ``requested``; the loop stops after the step (:meth:`check`)."""

    def __init__(self):
        self._signalled = False
        self._previous: dict = {}
        self._observer = None

    @property
    def requested(self) -> bool:
        return self._signalled or (self._observer is not None and self._observer.stop_requested)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` after a signal, :class:`Cancelled` after the app's Stop; else nothing."""
        if self._signalled:
            raise KeyboardInterrupt
        if self._observer is not None and self._observer.stop_requested:
            raise Cancelled("stopped by the user")

    def _handler(self, signum, frame):  # noqa: ARG002
        self._signalled = True

    def __enter__(self) -> DeferredStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        self._observer = current_observer()
        if self._observer is not None:
            self._observer.graceful += 1
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._observer is not None:
            self._observer.graceful -= 1
