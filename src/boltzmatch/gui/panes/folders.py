"""Sweeps, Generative and GFlowNets: open a sweep or run folder and see its report and plots, or
start one (the same library calls as ``boltzmatch sweep``, ``generative train`` + ``generative
compare``, ``gflownet train`` + ``gflownet evaluate``) with progress."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
)

from ..widgets import ImageView, PathField, ProgressRow
from .base import Pane


class FolderPane(Pane):
    """A folder's report (report.md or summary.txt) and its PNGs; subclasses add a form to start one."""

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.folder: Path | None = None
        self.path = PathField(mode="folder", caption="Open a folder")
        open_button = QPushButton("Open")
        open_button.clicked.connect(lambda: self.open(self.path.text()))
        self.progress = ProgressRow()
        self.report = QTextBrowser()
        self._text_font = self.report.font()
        self.images = QListWidget()
        self.images.currentTextChanged.connect(self._show_image)
        self.image = ImageView()
        self.start_box = QGroupBox("Start one")
        self.form = QFormLayout(self.start_box)
        top = QHBoxLayout()
        top.addWidget(self.path, 1)
        top.addWidget(open_button)
        right = QSplitter()
        right.addWidget(self.report)
        right.addWidget(self.image)
        right.setSizes([400, 600])
        self.arrange([top, self.progress], [self.start_box, self.images], right, stretch=3)

    def open(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            self.show_error(f"{folder}: not a folder", "")
            return
        self.folder = folder
        self.path.edit.setText(str(folder))
        fixed = not (folder / "report.md").exists()  # summary.txt tables need a fixed-width font
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont) if fixed else self._text_font)
        if not fixed:  # images are listed beside the text
            self.report.setMarkdown(re.sub(r"!\[[^\]]*\]\([^)]*\)", "", (folder / "report.md").read_text()))
        elif (folder / "summary.txt").exists():
            self.report.setPlainText((folder / "summary.txt").read_text())
        else:
            self.report.setPlainText(f"{folder}: no report.md or summary.txt")
        self.images.clear()
        pngs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
        self.images.addItems(pngs)
        if pngs:
            self.images.setCurrentRow(0)

    def _show_image(self, name: str) -> None:
        if self.folder is not None and name:
            self.image.show_png(self.folder / name)

    def _add_start_button(self, label: str, slot) -> QPushButton:
        button = QPushButton(label)
        button.clicked.connect(slot)
        self.form.addRow(button)
        return button


class GFlowNetPane(FolderPane):
    title = "GFlowNets"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.env = QComboBox()
        self.env.addItems(["hypergrid", "tetris", "torsions"])
        self.ndim = QSpinBox(minimum=1, maximum=8, value=2)
        self.height = QSpinBox(minimum=2, maximum=64, value=8)
        self.width = QSpinBox(minimum=2, maximum=8, value=4)
        self.loss = QComboBox()
        self.loss.addItems(["tb", "db", "subtb", "fm"])
        self.trajectories = QSpinBox(minimum=16, maximum=10_000_000, value=16_000, singleStep=1000)
        self.batch = QSpinBox(minimum=1, maximum=4096, value=64)
        for label, widget in (("environment", self.env), ("hypergrid ndim", self.ndim), ("height", self.height),
                              ("tetris width", self.width), ("loss", self.loss), ("trajectories", self.trajectories),
                              ("batch size", self.batch)):
            self.form.addRow(label, widget)
        self.go = self._add_start_button("Train and evaluate", self.start)

    def start(self) -> None:
        from ...gflownet.report import train_and_evaluate  # torch and the environments: when first used

        env = self.env.currentText()
        options = ({"ndim": self.ndim.value(), "height": self.height.value()} if env == "hypergrid" else
                   {"width": self.width.value(), "height": self.height.value()} if env == "tetris" else {})
        out = self.session.new_path(f"gflownet-{env}-{self.loss.currentText()}")
        worker = self.run(train_and_evaluate, str(out), env=env, env_options=options,
                          loss=self.loss.currentText(), n_trajectories=self.trajectories.value(),
                          batch_size=self.batch.value(), progress=self.progress, name="gflownet",
                          on_result=self.open)
        self.go.setEnabled(False)
        worker.signals.finished.connect(lambda: self.go.setEnabled(True))


class GenerativePane(FolderPane):
    title = "Generative"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        from ...generative import DATASETS, FAMILIES

        self.family = QComboBox()
        self.family.addItems(list(FAMILIES))
        self.family.setCurrentText("diffusion")
        self.data = QComboBox()
        self.data.setEditable(True)
        self.data.addItems(list(DATASETS))
        self.epochs = QSpinBox(minimum=0, maximum=100_000, value=0)
        self.epochs.setSpecialValueText("default")
        for label, widget in (("family", self.family), ("data", self.data), ("epochs", self.epochs)):
            self.form.addRow(label, widget)
        self.go = self._add_start_button("Train and judge", self.start)

    def start(self) -> None:
        from ...generative.commands import train_and_judge

        family, data = self.family.currentText(), self.data.currentText()
        out = self.session.new_path(f"generative-{family}-{Path(data).stem}")
        kwargs = {"epochs": self.epochs.value()} if self.epochs.value() else {}
        worker = self.run(train_and_judge, family, data, out=str(out), progress=self.progress,
                          name="generative", on_result=lambda run: self.open(Path(run) / "report"), **kwargs)
        self.go.setEnabled(False)
        worker.signals.finished.connect(lambda: self.go.setEnabled(True))


class SweepPane(FolderPane):
    title = "Sweeps"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.config = PathField(caption="Sweep YAML (W&B format)", filters="YAML (*.yaml *.yml)")
        self.form.addRow("sweep YAML", self.config)
        self.go = self._add_start_button("Run sweep and report", self.start)

    def start(self) -> None:
        from ...sweep.report import run_and_report

        config = self.config.text()
        if not config:
            self.show_error("sweep: choose a sweep YAML file", "")
            return
        out = self.session.new_path(f"sweep-{Path(config).stem}")
        worker = self.run(run_and_report, config, str(out), progress=self.progress, name="sweep",
                          on_result=self.open)
        self.go.setEnabled(False)
        worker.signals.finished.connect(lambda: self.go.setEnabled(True))
