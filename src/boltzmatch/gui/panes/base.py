"""What every pane shares: the session, the task pool, and one way to run a library call."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLayout, QSplitter, QVBoxLayout, QWidget

from ..session import Session
from ..widgets import ProgressRow, error_dialog
from ..worker import Tasks, Worker


class Pane(QWidget):
    title = "pane"

    def __init__(self, session: Session, tasks: Tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.tasks = session, tasks
        self.worker: Worker | None = None
        self.last_error: str | None = None
        self._seen: dict[str, tuple] = {}

    def run(self, fn: Callable, *args, progress: ProgressRow | None = None, on_result: Callable | None = None,
            name: str = "", **kwargs) -> Worker:
        """Start ``fn(*args, **kwargs)`` in a worker; progress, result and errors come back as signals."""
        worker = Worker(fn, *args, name=name, **kwargs)
        self.worker = worker
        self.last_error = None
        if progress is not None:
            progress.started(worker.name)
            progress.stop_clicked.connect(worker.cancel)
            worker.signals.progress.connect(progress.report)
            worker.signals.result.connect(lambda _r: progress.finished(f"{worker.name}: done"))
            worker.signals.cancelled.connect(lambda: progress.finished(f"{worker.name}: stopped"))
            worker.signals.error.connect(lambda msg, _d: progress.finished(f"{worker.name}: failed", complete=False))
            worker.signals.finished.connect(lambda: _disconnect(progress, worker))
        if on_result is not None:
            worker.signals.result.connect(on_result)
        worker.signals.error.connect(self.show_error)
        return self.tasks.start(worker)

    def arrange(self, top: list, left: list, right: QWidget, stretch: int = 2) -> None:
        """The panes' layout: ``top`` rows (widgets or layouts) over a splitter of a ``left`` column
        (its last item stretches) and the ``right`` view."""
        column = QWidget()
        column_layout = QVBoxLayout(column)
        for k, part in enumerate(left):
            _add(column_layout, part, 1 if k == len(left) - 1 else 0)
        split = QSplitter()
        split.addWidget(column)
        split.addWidget(right)
        split.setStretchFactor(1, stretch)
        layout = QVBoxLayout(self)
        for part in top:
            _add(layout, part, 0)
        layout.addWidget(split, 1)

    def poller(self, slot: Callable, interval_ms: int = 500) -> QTimer:
        """A timer that calls ``slot`` while work runs (live curves read from the files it writes)."""
        timer = QTimer(self)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    def changed(self, path, key: str) -> bool:
        """Whether ``path`` changed (size, mtime) since this pane last asked under ``key``: live
        views redraw only then, since a matplotlib redraw costs the event loop ~100 ms."""
        from pathlib import Path

        path = Path(path)
        signature = (str(path), *((path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else (0, 0)))
        if self._seen.get(key) == signature:
            return False
        self._seen[key] = signature
        return True

    def show_error(self, message: str, details: str) -> None:
        self.last_error = message
        error_dialog(self, message, details)


def _add(layout: QVBoxLayout, part, stretch: int) -> None:
    if isinstance(part, QLayout):
        layout.addLayout(part, stretch)
    else:
        layout.addWidget(part, stretch)


def _disconnect(progress: ProgressRow, worker: Worker) -> None:
    try:
        progress.stop_clicked.disconnect(worker.cancel)
    except (RuntimeError, TypeError):
        pass
