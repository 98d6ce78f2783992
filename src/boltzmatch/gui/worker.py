"""Long work off the GUI thread: a QRunnable per library call, signals for progress, result, error.

A :class:`Worker` runs one public boltzmatch function in the application's QThreadPool inside an
:class:`~boltzmatch.utils.progress.Observer`, so the function's own progress bars report to the
window (throttled to 20 per second) and its Stop button stops the work at the next bar update
(MD at the end of a step, after a checkpoint). Exceptions become the ``error`` signal with a
one-line message and the traceback as details; nothing escapes into Qt's event loop.
"""

from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..errors import BoltzmatchError
from ..utils.progress import Cancelled, Observer, observed

PROGRESS_INTERVAL = 0.05  # s between progress signals


class WorkerSignals(QObject):
    progress = Signal(str, int, object, dict)  # description, done, total (None: unknown), postfix
    result = Signal(object)
    error = Signal(str, str)  # one-line message, details (traceback)
    cancelled = Signal()
    finished = Signal()


class Worker(QRunnable):
    """``fn(*args, **kwargs)`` in a pool thread; ``name`` labels it in the status bar."""

    def __init__(self, fn: Callable, *args, name: str = "", **kwargs):
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "work")
        self.signals = WorkerSignals()
        self.observer = Observer(self._report)
        self._last = 0.0
        self.done = False

    def _report(self, desc: str, n: int, total: int | None, postfix: dict) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL or (total and n >= total):
            self._last = now
            self.signals.progress.emit(desc or self.name, int(n), total, postfix)

    def cancel(self) -> None:
        self.observer.request_stop()

    def run(self) -> None:
        try:
            with observed(self.observer):
                result = self.fn(*self.args, **self.kwargs)
        except (Cancelled, KeyboardInterrupt):
            self.signals.cancelled.emit()
        except BoltzmatchError as exc:
            self.signals.error.emit(str(exc), traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 (a worker must never take the window down)
            self.signals.error.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.signals.result.emit(result)
        finally:
            self.done = True
            self.signals.finished.emit()


class Tasks(QObject):
    """The application's workers: start, stop all, and wait for them (window close, test teardown)."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.running: list[Worker] = []
        self.helpers: list[Worker] = []

    def start(self, worker: Worker) -> Worker:
        self.running.append(worker)
        worker.signals.finished.connect(lambda w=worker: self._finished(w))
        self.busy_changed.emit(True)
        self.pool.start(worker)
        return worker

    def _finished(self, worker: Worker) -> None:
        if worker in self.running:
            self.running.remove(worker)
        # what a finished job left (frames read, runs, plots) lives on: out of the collector's sight, so a
        # full collection during the next job does not walk it (it paused the event loop for ~140 ms)
        gc.freeze()
        self.busy_changed.emit(bool(self.running))

    def start_quiet(self, worker: Worker) -> Worker:
        """Run a helper (an off-thread plot) in the same pool, joined by :meth:`wait`, not listed as work."""
        self.helpers.append(worker)  # a reference while it runs: the pool holds only the C++ side
        worker.signals.finished.connect(lambda w=worker: self.helpers.remove(w) if w in self.helpers else None)
        self.pool.start(worker)
        return worker

    def cancel_all(self) -> None:
        for worker in list(self.running):
            worker.cancel()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until every worker has returned (True) or ``timeout_ms`` passed (False)."""
        return self.pool.waitForDone(timeout_ms)
