"""Loss landscape: the loss of a run around its weights along random filter-normalised directions,
two parameters picked from the parameter tree, or the line to another run; contour, a rotatable
surface, sharpness. Energy models on the Data pane's frames; with hinge or cross-entropy, the classifier
runs (jem, classifier) on their data set's held-out part. All numbers from ``boltzmatch landscape``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
)

from ... import load
from ...analysis.landscape import CLASSIFIER_LOSSES, LANDSCAPE_OBJECTIVES, landscape, trainable_parameters
from ...analysis.plots import draw_landscape_contour, draw_landscape_surface
from ...errors import BoltzmatchError
from ..widgets import PlotPanel, ProgressRow, fill_table
from .base import Pane

LOSS_LABELS = {"energy": "energy (MSE)", "energy-mae": "energy (MAE)", "energy-huber": "energy (Huber)"}


def run_landscape(run: str, data: str | None, out: str, **kwargs) -> tuple[dict, dict]:
    """``landscape`` (or, for hinge and cross-entropy, the classifier landscape) and the grid it wrote."""
    if kwargs["objective"] in CLASSIFIER_LOSSES:
        from ...generative.landscape import classifier_landscape

        kwargs["loss"], kwargs["max_samples"] = kwargs.pop("objective"), kwargs.pop("max_frames")
        kwargs.pop("temperature", None)
        result = classifier_landscape(run, out=out, **kwargs)
    else:
        result = landscape(run, data, out=out, **kwargs)
    with np.load(Path(out) / "landscape.npz") as grid:
        return result, {k: grid[k] for k in ("x", "y", "loss")}


class LandscapePane(Pane):
    title = "Loss landscape"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.result: dict | None = None
        self.run_box = QComboBox()
        self.run_box.currentIndexChanged.connect(self._fill_parameters)
        self.other_box = QComboBox()
        self.objective = QComboBox()
        for name in LANDSCAPE_OBJECTIVES + CLASSIFIER_LOSSES:
            self.objective.addItem(LOSS_LABELS.get(name, name), name)
        self.objective.setCurrentIndex(LANDSCAPE_OBJECTIVES.index("fisher"))
        self.objective.currentIndexChanged.connect(lambda _i: self.refresh_runs())
        self.kind = QButtonGroup(self)
        kinds = QHBoxLayout()
        for k, label in enumerate(("random directions", "two parameters", "line to another run")):
            button = QRadioButton(label)
            self.kind.addButton(button, k)
            kinds.addWidget(button)
        self.kind.button(0).setChecked(True)
        self.parameters = QTreeWidget()
        self.parameters.setHeaderLabels(["parameter (check two entries)", "shape"])
        self.span = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=100.0, value=1.0)
        self.grid = QSpinBox(minimum=2, maximum=201, value=11)
        self.max_frames = QSpinBox(minimum=1, maximum=100_000, value=100)
        self.temperature = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=5000.0, value=0.0, suffix=" K")
        self.temperature.setSpecialValueText("from the data")
        form = QFormLayout()
        form.addRow("run", self.run_box)
        form.addRow("objective", self.objective)
        form.addRow("directions", kinds)
        form.addRow("second run (line)", self.other_box)
        form.addRow("span", self.span)
        form.addRow("grid points per axis", self.grid)
        form.addRow("frames (at most)", self.max_frames)
        form.addRow("temperature", self.temperature)
        self.go = QPushButton("Compute")
        self.go.clicked.connect(self.start)
        form.addRow(self.go)
        self.progress = ProgressRow()
        self.contour = PlotPanel(size=(5.0, 4.0))
        self.surface = PlotPanel(size=(5.0, 4.0))
        self.sharpness = QTableWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.contour, "contour / line")
        self.tabs.addTab(self.surface, "surface (drag to rotate)")
        self.tabs.addTab(self.sharpness, "numbers")
        self.arrange([self.progress], [form, self.parameters], self.tabs)
        session.runs_changed.connect(self.refresh_runs)
        self.refresh_runs()

    def refresh_runs(self) -> None:
        current, other = self.run_box.currentData(), self.other_box.currentData()
        for box, keep in ((self.run_box, current), (self.other_box, other)):
            box.blockSignals(True)
            box.clear()
            for run in self._runs():
                box.addItem(run.name, str(run))
            if keep is not None and box.findData(keep) >= 0:
                box.setCurrentIndex(box.findData(keep))
            box.blockSignals(False)
        self._fill_parameters()

    def classifier(self) -> bool:
        return self.objective.currentData() in CLASSIFIER_LOSSES

    def _runs(self) -> list[Path]:
        """Energy-model runs, or the classifier runs when a classifier loss is chosen."""
        return self.session.classifier_runs() if self.classifier() else self.session.runs()

    def _fill_parameters(self) -> None:
        self.parameters.clear()
        run = self.run_box.currentData()
        if not run:
            return
        try:
            if self.classifier():
                from ...generative.landscape import classifier_network

                params = trainable_parameters(classifier_network(run))
            else:
                params = trainable_parameters(load(run))
        except BoltzmatchError:
            return
        groups: dict[str, QTreeWidgetItem] = {}
        for name, tensor in params.items():
            module = name.rsplit(".", 1)[0] if "." in name else "(model)"
            group = groups.get(module)
            if group is None:
                group = groups[module] = QTreeWidgetItem([module, ""])
                self.parameters.addTopLevelItem(group)
            leaf = QTreeWidgetItem([f"{name}[0]", str(tuple(tensor.shape))])
            leaf.setFlags(leaf.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable)
            leaf.setCheckState(0, Qt.CheckState.Unchecked)
            leaf.setToolTip(0, "edit the index, e.g. name[3] or name[1][2]")
            group.addChild(leaf)
        self.parameters.expandAll()
        self.parameters.resizeColumnToContents(0)  # long parameter names were cut off
        self.parameters.resizeColumnToContents(1)

    def checked_parameters(self) -> list[str]:
        out = []
        for g in range(self.parameters.topLevelItemCount()):
            group = self.parameters.topLevelItem(g)
            for c in range(group.childCount()):
                leaf = group.child(c)
                if leaf.checkState(0) == Qt.CheckState.Checked:
                    out.append(leaf.text(0))
        return out

    def check_parameters(self, specs: list[str]) -> None:
        """Check the leaves named ``specs`` (NAME[i]; the index is edited into the leaf)."""
        for spec in specs:
            name = spec.split("[", 1)[0]
            for g in range(self.parameters.topLevelItemCount()):
                group = self.parameters.topLevelItem(g)
                for c in range(group.childCount()):
                    leaf = group.child(c)
                    if leaf.text(0).split("[", 1)[0] == name:
                        leaf.setText(0, spec)
                        leaf.setCheckState(0, Qt.CheckState.Checked)

    def directions(self) -> str:
        kind = self.kind.checkedId()
        if kind == 1:
            picked = self.checked_parameters()
            if len(picked) != 2:
                raise BoltzmatchError(f"two parameters: check exactly two entries in the tree, not {len(picked)}")
            return "params:" + ",".join(picked)
        if kind == 2:
            other = self.other_box.currentData()
            if not other or other == self.run_box.currentData():
                raise BoltzmatchError("line: choose a second run other than the first")
            return f"line:{other}"
        return "random"

    def start(self) -> None:
        try:
            run, data = self.run_box.currentData(), self.session.data
            if self.classifier() and not run:
                raise BoltzmatchError("landscape: hinge and cross-entropy need a classifier run (generative jem or "
                                      "classifier, trained on digits in the Generative pane)")
            if not run or (not data and not self.classifier()):
                raise BoltzmatchError("landscape: needs a run and data (Data pane)")
            kwargs = {"objective": self.objective.currentData(), "directions": self.directions(),
                      "span": self.span.value(), "grid": self.grid.value(), "max_frames": self.max_frames.value()}
            if self.temperature.value() > 0:
                kwargs["temperature"] = self.temperature.value()
        except BoltzmatchError as exc:
            self.show_error(str(exc), "")
            return
        out = self.session.new_path(f"landscape-{Path(run).name}")
        self.go.setEnabled(False)
        worker = self.run(run_landscape, run, data, str(out), progress=self.progress, name="landscape",
                          on_result=self.show_result, **kwargs)
        worker.signals.finished.connect(lambda: self.go.setEnabled(True))

    def show_result(self, payload: tuple[dict, dict]) -> None:
        result, grid = payload
        self.result = result
        title = f"{result['objective']} loss"
        labels = result.get("labels") or ["direction 1", "direction 2"]
        figure = self.contour.clear()
        surface = self.surface.clear()
        if grid["y"].size == 0:  # a line
            ax = figure.add_subplot()
            ax.plot(grid["x"], grid["loss"], "o-", ms=3)
            for mark in (0.0, 1.0):
                ax.axvline(mark, color="grey", ls="--", lw=0.8)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(title)
        else:
            draw_landscape_contour(figure, figure.add_subplot(), grid["x"], grid["y"], grid["loss"], labels=labels,
                                   title=title)
            draw_landscape_surface(surface.add_subplot(projection="3d"), grid["x"], grid["y"], grid["loss"],
                                   labels=labels, title=title)
        self.contour.draw()
        self.surface.draw()
        fill_table(self.sharpness, ["quantity", "value"],
                   [[k, v] for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)])
