"""Reusable widgets: matplotlib canvases with their toolbar, file fields, progress rows, the error
dialog and tables. Presentation only; the numbers come from boltzmatch's API."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class PlotPanel(QWidget):
    """A matplotlib Figure on a Qt canvas with the navigation toolbar (zoom, pan, save)."""

    def __init__(self, parent: QWidget | None = None, *, size: tuple[float, float] = (5.0, 3.6)):
        super().__init__(parent)
        self.figure = Figure(figsize=size, dpi=100, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)

    def clear(self):
        self.figure.clear()
        return self.figure

    def draw(self) -> None:
        self.canvas.draw_idle()


class LivePlot(QStackedWidget):
    """A plot that updates while work runs without stalling the event loop.

    Live frames are drawn off the GUI thread (Agg on a private Figure, in a pool worker) and shown as
    an image: a matplotlib redraw costs 50–150 ms, too long for the event loop while a training
    competes for the CPU (measured: 296 ms worst tick drawing on the GUI thread, see
    benchmarks/gui_responsiveness.py). ``show_final`` draws on the interactive canvas (toolbar,
    zoom) once the work is done."""

    def __init__(self, tasks, parent: QWidget | None = None, *, size: tuple[float, float] = (5.0, 3.6)):
        super().__init__(parent)
        self.tasks = tasks
        self.panel = PlotPanel(size=size)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 150)
        self.addWidget(self.panel)
        self.addWidget(self.image)
        self._busy = False
        self._pending = None
        self.frames = 0

    def show_live(self, draw) -> None:
        """Render ``draw(figure)`` in a worker; while one renders, keep only the newest request."""
        if self._busy:
            self._pending = draw
            return
        from .worker import Worker

        self._busy = True
        size = self.size()
        worker = Worker(_render, draw, max(size.width(), 320), max(size.height(), 240), name="plot")
        worker.signals.result.connect(self._rendered)
        worker.signals.finished.connect(self._next)
        self.tasks.start_quiet(worker)

    def _rendered(self, frame) -> None:
        buffer, width, height = frame
        image = QImage(buffer, width, height, QImage.Format.Format_RGBA8888).copy()
        self.image.setPixmap(QPixmap.fromImage(image))
        self.setCurrentWidget(self.image)
        self.frames += 1

    def _next(self) -> None:
        self._busy = False
        if self._pending is not None:
            draw, self._pending = self._pending, None
            self.show_live(draw)

    def show_final(self, draw) -> None:
        """Draw on the interactive canvas (GUI thread) and show it."""
        self._pending = None
        draw(self.panel.clear())
        self.panel.draw()
        self.setCurrentWidget(self.panel)


def _render(draw, width: int, height: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    draw(figure)
    canvas.draw()
    return bytes(canvas.buffer_rgba()), int(canvas.get_width_height()[0]), int(canvas.get_width_height()[1])


class ImageView(QScrollArea):
    """A PNG written by the CLI, shown as is (scaled to the width)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("no image", alignment=Qt.AlignmentFlag.AlignCenter)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.path: Path | None = None

    def show_png(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rescale()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self.path is not None:
            self._rescale()

    def _rescale(self) -> None:
        path = self.path
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            self.label.setText(f"cannot read {path}")
            return
        width = max(self.viewport().width() - 4, 320)
        self.label.setPixmap(pixmap if pixmap.width() <= width else
                             pixmap.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation))


class PathField(QWidget):
    """A line edit for a path with a Browse… button (``mode`` file, save or folder)."""

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, mode: str = "file", caption: str = "Choose",
                 filters: str = "All files (*)"):
        super().__init__(parent)
        self.mode, self.caption, self.filters = mode, caption, filters
        self.edit = QLineEdit()
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.text()))
        button = QPushButton("Browse…")
        button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(button)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, value: str | Path) -> None:
        self.edit.setText(str(value))
        self.changed.emit(self.text())

    def browse(self) -> None:
        start = self.text() or str(Path.cwd())
        if self.mode == "folder":
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, self.caption, start, self.filters)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.filters)
        if path:
            self.set_text(path)


class ProgressRow(QWidget):
    """Progress bar, a line of text (the bar's description and postfix) and a Stop button."""

    stop_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.text = QLabel("idle")
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.stop.clicked.connect(self.stop_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.text, 3)
        layout.addWidget(self.stop)

    def started(self, what: str) -> None:
        self.bar.setRange(0, 0)  # busy until the first report
        self.text.setText(what)
        self.stop.setEnabled(True)

    def report(self, desc: str, n: int, total, postfix: dict) -> None:
        if total:
            self.bar.setRange(0, int(total))
            self.bar.setValue(min(int(n), int(total)))
        extra = ", ".join(f"{k}={v}" if k else str(v) for k, v in postfix.items())
        self.text.setText(f"{desc}: {n}" + (f"/{total}" if total else "") + (f"  {extra}" if extra else ""))

    def finished(self, message: str, complete: bool = True) -> None:
        """The work ended: a full bar when it did what it set out to, an empty one when it failed."""
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if complete else 0)
        self.text.setText(message)
        self.stop.setEnabled(False)


def error_dialog(parent: QWidget, message: str, details: str = "") -> QMessageBox:
    """A non-blocking error box: the one-line message, the traceback behind 'Show Details…'."""
    box = QMessageBox(QMessageBox.Icon.Critical, "boltzmatch", message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def fill_table(table: QTableWidget, header: list[str], rows: list[list]) -> None:
    """Put ``rows`` (numbers formatted to 4 significant digits) into ``table``."""
    table.clear()
    table.setColumnCount(len(header))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(header)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            text = f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))
            item = QTableWidgetItem(text)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    header = table.horizontalHeader()
    header.setStretchLastSection(True)  # the last (value) column takes the width left
    if table.columnCount() == 2:  # quantity | value: the names give way to the values, which wrap
        table.setColumnWidth(0, min(table.columnWidth(0), max(120, int(0.5 * table.viewport().width()))))
    table.setWordWrap(True)
    table.resizeRowsToContents()
    table.horizontalHeader().setStretchLastSection(True)
