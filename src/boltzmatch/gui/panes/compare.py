"""Compare: ``boltzmatch compare`` on the checked runs: the report's table, its plots, the KS panel,
and an energy parity plot whose points open their frame of the test file in the pane's frame tab."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTabWidget,
    QWidget,
)

from ... import read_structures
from ...analysis.plots import draw_parity, parity_errors
from ...errors import BoltzmatchError
from ..viewer import FrameViewer
from ..widgets import ImageView, PathField, PlotPanel, ProgressRow, fill_table
from .base import Pane

KS_KEYS = [("energy_ks", "energy KS"), ("energy_ks_pvalue", "energy KS p"), ("bond_ks", "bond KS"),
           ("angle_ks", "angle KS"), ("hr_mae", "h(r) MAE"), ("mmd", "MMD²")]
PLOTS = [("parity.png", "parity"), ("survival.png", "survival"), ("ks.png", "KS plots"), ("hr.png", "h(r)"),
         ("bond_lengths.png", "bond lengths"), ("energy_trajectory.png", "energy along trajectory"),
         ("ramachandran.png", "Ramachandran")]


class ComparePane(Pane):
    title = "Compare"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.result: dict | None = None
        self.out: Path | None = None
        self.runs = QListWidget()
        self.test = PathField(caption="Test structures (labelled, held out)")
        self.test.edit.setPlaceholderText("held-out labelled frames, e.g. a separately seeded trajectory")
        self.simulate = QCheckBox("run MD with each model")
        self.simulate.setChecked(True)
        self.replicas = QSpinBox(minimum=1, maximum=4096, value=16)
        self.time = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=100_000.0, value=5.0, suffix=" ps")
        self.temperature = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=5000.0, value=0.0, suffix=" K")
        self.temperature.setSpecialValueText("from the data")
        form = QFormLayout()
        form.addRow("runs (checked)", self.runs)
        form.addRow("test frames", self.test)
        form.addRow(self.simulate)
        form.addRow("replicas", self.replicas)
        form.addRow("time", self.time)
        form.addRow("temperature", self.temperature)
        self.go = QPushButton("Compare")
        self.go.clicked.connect(self.start)
        form.addRow(self.go)
        self.progress = ProgressRow()
        self.table = QTableWidget()
        self.ks = QTableWidget()
        self.parity = PlotPanel(size=(5.0, 4.0))
        self.parity.canvas.mpl_connect("pick_event", self._picked)
        self.parity_runs: list[str] = []
        self.frame = FrameViewer()  # frames of the test file the result was computed on
        self.frames_of: str | None = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "table")
        self.tabs.addTab(self.ks, "KS panel")
        self.tabs.addTab(self.parity, "parity (click a point)")
        self.tabs.addTab(self.frame, "test frame")
        self.images: dict[str, ImageView] = {}
        for name, label in PLOTS:
            view = ImageView()
            self.images[name] = view
            self.tabs.addTab(view, label)
        self.report_label = QLabel()
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.arrange([self.progress], [form, QWidget()], self.tabs, stretch=3)
        self.layout().addWidget(self.report_label)
        session.runs_changed.connect(self.refresh_runs)
        self.refresh_runs()

    def refresh_runs(self) -> None:
        checked = set(self.checked_runs())
        self.runs.clear()
        for run in self.session.runs():
            item = QListWidgetItem(run.name)
            item.setData(256, str(run))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if str(run) in checked else Qt.CheckState.Unchecked)
            self.runs.addItem(item)

    def checked_runs(self) -> list[str]:
        return [self.runs.item(i).data(256) for i in range(self.runs.count())
                if self.runs.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked(self, runs: list[str | Path]) -> None:
        wanted = {str(Path(r)) for r in runs}
        for i in range(self.runs.count()):
            item = self.runs.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(256) in wanted else Qt.CheckState.Unchecked)

    def start(self) -> None:
        runs, test = self.checked_runs(), self.test.text()
        if not runs or not test:
            # no default: the training file (the Data pane's) would flatter every model
            self.show_error("compare: check at least one run and give held-out labelled test structures "
                            "(not the training file: its errors flatter)", "")
            return
        self.out = self.session.new_path("compare")
        kwargs = {"simulate": self.simulate.isChecked(), "replicas": self.replicas.value(), "time": self.time.value()}
        if self.temperature.value() > 0:
            kwargs["temperature"] = self.temperature.value()
        self.go.setEnabled(False)
        from ...analysis.compare import compare  # scipy.stats: imported when first used, not at start-up

        worker = self.run(compare, runs, test, out=str(self.out), parity=True, progress=self.progress,
                          name="compare", on_result=self.show_result, **kwargs)
        worker.signals.finished.connect(lambda: self.go.setEnabled(True))

    def show_result(self, result: dict) -> None:
        from ...analysis.compare import ROWS

        self.result = result
        models = result["models"]
        names = list(models)
        fill_table(self.table, ["metric", *names],
                   [[label, *[models[n].get(key) for n in names]] for key, label in ROWS
                    if any(models[n].get(key) is not None for n in names)])
        fill_table(self.ks, ["model", *[label for _, label in KS_KEYS]],
                   [[n, *[models[n].get(k) for k, _ in KS_KEYS]] for n in names])
        for name, view in self.images.items():
            if self.out is not None and (self.out / name).exists():
                view.show_png(self.out / name)
        self.draw_parity(result.get("parity", {}))
        self.report_label.setText(f"report: {self.out / 'report.md'}" if self.out else "")

    def draw_parity(self, parity: dict) -> None:
        figure = self.parity.clear()
        ax = figure.add_subplot()
        self.parity_runs = []
        for name, values in parity.items():
            if "energy_predicted" not in values:
                continue
            reference, predicted = values["energy_reference"], values["energy_predicted"]
            artist = draw_parity(ax, reference, predicted, label="energy (eV)", annotate=False,
                                 title="energy parity: click a point to open its test frame")
            if artist is not None:
                artist.set_picker(5)
                artist.set_label(f"{name}: {parity_errors(reference, predicted)} eV")  # in the legend, not on points
                artist.set_gid(name)
            self.parity_runs.append(name)
        if self.parity_runs:
            ax.legend(fontsize=8)
        self.parity.draw()

    def _picked(self, event) -> None:
        if len(getattr(event, "ind", [])):
            self.open_test_frame(int(event.ind[0]))

    def open_test_frame(self, index: int) -> None:
        """Show frame ``index`` of the test file the result was computed on (a parity point was clicked)."""
        test = ((self.result or {}).get("settings") or {}).get("test") or self.test.text()
        if not test:
            return
        if self.frames_of != test:
            try:
                self.frame.set_frames(read_structures(test))
            except BoltzmatchError as exc:
                self.show_error(str(exc), "")
                return
            self.frames_of = test
        self.frame.slider.setValue(index)
        self.frame.show_frame(index)
        self.tabs.setCurrentWidget(self.frame)

    def load_report(self, folder: str | Path) -> None:
        """Show a finished compare folder (compare.json and its PNGs)."""
        folder = Path(folder)
        try:
            result = json.loads((folder / "compare.json").read_text())
        except (OSError, ValueError) as exc:
            raise BoltzmatchError(f"{folder}: no readable compare.json ({exc})") from None
        self.out = folder
        self.show_result(result)
