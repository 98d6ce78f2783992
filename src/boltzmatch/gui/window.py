"""The main window: a list of panes on the left, the pane on the right, a status bar that says
what is running; settings (geometry, working folder, recent files) persist in QSettings."""

from __future__ import annotations

import gc
from pathlib import Path

from PySide6.QtCore import QSettings, QSize
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QListWidget, QMainWindow, QSplitter, QStackedWidget

from .panes.compare import ComparePane
from .panes.data import STRUCTURE_FILTERS, DataPane
from .panes.folders import GenerativePane, GFlowNetPane, SweepPane
from .panes.landscape import LandscapePane
from .panes.model import ModelPane
from .panes.simulate import SimulatePane
from .panes.train import TrainPane
from .session import Session
from .worker import Tasks


class MainWindow(QMainWindow):
    def __init__(self, workdir: str | Path | None = None, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("boltzmatch", "boltzmatch")
        workdir = workdir or self.settings.value("workdir") or Path.home() / "boltzmatch-runs"
        self.tasks = Tasks(self)
        self.session = Session(workdir, self.settings, self)
        self.setWindowTitle(f"boltzmatch — {self.session.workdir}")
        self.data = DataPane(self.session, self.tasks)
        self.model = ModelPane(self.session, self.tasks)
        self.train = TrainPane(self.session, self.tasks, self.model.config)
        self.compare = ComparePane(self.session, self.tasks)
        self.landscape = LandscapePane(self.session, self.tasks)
        self.simulate = SimulatePane(self.session, self.tasks)
        self.sweeps = SweepPane(self.session, self.tasks)
        self.generative = GenerativePane(self.session, self.tasks)
        self.gflownets = GFlowNetPane(self.session, self.tasks)
        self.panes = [self.data, self.model, self.train, self.compare, self.landscape, self.simulate, self.sweeps,
                      self.generative, self.gflownets]
        self.nav = QListWidget()
        self.stack = QStackedWidget()
        for pane in self.panes:
            self.nav.addItem(pane.title)
            self.stack.addWidget(pane)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setMaximumWidth(170)
        split = QSplitter()
        split.addWidget(self.nav)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setSizes([150, 1130])
        self.setCentralWidget(split)
        self.busy = QLabel("idle")
        self.statusBar().addPermanentWidget(self.busy)
        self.tasks.busy_changed.connect(lambda busy: self.busy.setText(
            "running: " + ", ".join(w.name for w in self.tasks.running) if busy else "idle"))
        self._menus()
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(QSize(1280, 820))
        self.nav.setCurrentRow(0)
        # the ~10⁶ objects of torch, matplotlib and Qt made so far never die: out of the collector's
        # sight, a full collection no longer walks them (it paused the event loop for ~200 ms)
        gc.freeze()

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for label, slot in (("Open structures…", self._open_data), ("Open run folder…", self._open_run),
                            ("Set working folder…", self._set_workdir)):
            action = QAction(label, self)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        settings_menu = self.menuBar().addMenu("&Settings")
        self._device_menu(settings_menu.addMenu("Compute device"))
        self.cuda_graphs_action = QAction("Replay CUDA graphs (training and MD on a CUDA device)", self,
                                          checkable=True)
        self.cuda_graphs_action.setChecked(self.session.cuda_graphs())
        self.cuda_graphs_action.toggled.connect(self.session.set_cuda_graphs)
        settings_menu.addAction(self.cuda_graphs_action)

    def _device_menu(self, menu) -> None:
        """auto, cpu and each CUDA device this machine has; the choice persists (training and MD use it)."""
        import torch
        from PySide6.QtGui import QActionGroup

        group = QActionGroup(self)
        choices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        self.device_actions = {}
        for choice in choices:
            label = {"auto": "auto (CUDA when present)", "cpu": "cpu"}.get(choice)
            label = label or f"{choice} ({torch.cuda.get_device_name(int(choice[5:]))})"
            action = QAction(label, self, checkable=True)
            action.setChecked(choice == self.session.device())
            action.triggered.connect(lambda _checked=False, c=choice: self.session.set_device(c))
            group.addAction(action)
            menu.addAction(action)
            self.device_actions[choice] = action

    def show_pane(self, pane) -> None:
        self.nav.setCurrentRow(self.panes.index(pane))

    def _open_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open structures", str(self.session.workdir), STRUCTURE_FILTERS)
        if path:
            self.show_pane(self.data)
            self.data.open(path)

    def _open_run(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run folder", str(self.session.workdir))
        if path:
            self.session.add_run(path)

    def _set_workdir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Working folder", str(self.session.workdir))
        if path:
            self.settings.setValue("workdir", path)
            self.session.workdir = Path(path)
            self.setWindowTitle(f"boltzmatch — {path}")
            self.session.runs_changed.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Stop running work (files stay valid: checkpoints, atomic writes) and wait for it."""
        self.tasks.cancel_all()
        self.tasks.wait(30_000)
        self.settings.setValue("window/geometry", self.saveGeometry())
        super().closeEvent(event)
