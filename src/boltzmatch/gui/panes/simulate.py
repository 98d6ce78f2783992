"""Simulate: batched MD of a run's model; a live survival curve (from the run's progress reports)
and temperature trace (from thermo.csv); Stop ends MD after the current step with a checkpoint; each
replica's trajectory in 3-D, a collapsed one opened at its collapse with the bond that broke in red."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ... import simulate
from ...analysis.plots import draw_survival
from ...simulate.barostat import COUPLINGS
from ...simulate.integrators import INTEGRATORS
from ...simulate.output import read_replica
from ...simulate.summary import format_simulation
from ..viewer import FrameViewer
from ..widgets import LivePlot, ProgressRow, fill_table
from .base import Pane

STABLE = re.compile(r"stable (\d+)/(\d+)")


def draw_live_survival(figure, points: list[tuple[float, float]], total: float) -> None:
    ax = figure.add_subplot()
    t, f = zip(*points)
    ax.step(t, f, where="post", label="running")
    ax.set_xlim(0, total)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("fraction of replicas stable")


def draw_temperature(figure, times: np.ndarray, temps: np.ndarray, target: float) -> None:
    ax = figure.add_subplot()
    if times.size:
        ax.plot(times, temps, lw=1)
    ax.axhline(target, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("mean temperature (K)")


def mean_temperature_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Time (ps) and the replicas' mean temperature (K) from a thermo.csv being written."""
    if not path.exists():
        return np.zeros(0), np.zeros(0)
    sums: dict[float, list[float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            try:
                sums.setdefault(float(row["time_ps"]), []).append(float(row["temperature_K"]))
            except (KeyError, TypeError, ValueError):
                continue  # the line being written
    times = np.array(sorted(sums))
    return times, np.array([np.mean(sums[t]) for t in times])


class SimulatePane(Pane):
    title = "Simulate"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.out: Path | None = None
        self.summary: dict | None = None
        self.live: list[tuple[float, float]] = []
        self.run_box = QComboBox()
        self.replicas = QSpinBox(minimum=1, maximum=4096, value=32)
        self.temperature = QDoubleSpinBox(decimals=1, minimum=1.0, maximum=5000.0, value=500.0, suffix=" K")
        self.time = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1e6, value=10.0, suffix=" ps")
        self.timestep = QDoubleSpinBox(decimals=3, minimum=0.01, maximum=10.0, value=0.5, suffix=" fs")
        self.integrator = QComboBox()
        self.integrator.addItems(list(INTEGRATORS))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.pressure = QLineEdit()
        self.pressure.setPlaceholderText("none: NVT")
        self.pressure.setToolTip("GPa: NPT, every replica's cell rescaled to hold this pressure (crystals, with "
                                 "langevin; simulate --pressure)")
        self.coupling = QComboBox()
        self.coupling.addItems(list(COUPLINGS))
        self.coupling.setToolTip("which cell axes scale together under a pressure (simulate --pressure-coupling); "
                                 "anisotropic lets a crystal's c/a move, and needs cells along x, y and z")
        form = QFormLayout()
        for label, widget in (("run", self.run_box), ("replicas", self.replicas), ("temperature", self.temperature),
                              ("time", self.time), ("timestep", self.timestep), ("integrator", self.integrator),
                              ("pressure (GPa)", self.pressure), ("pressure coupling", self.coupling),
                              ("seed", self.seed)):
            form.addRow(label, widget)
        self.go = QPushButton("Run MD")
        self.go.clicked.connect(self.start)
        form.addRow(self.go)
        self.progress = ProgressRow()
        self.table = QTableWidget()
        self.survival = LivePlot(tasks, size=(5.0, 3.0))
        self.thermo = LivePlot(tasks, size=(5.0, 3.0))
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.survival)
        plots.addWidget(self.thermo)
        self.replica_box = QComboBox()
        self.replica_box.currentIndexChanged.connect(self.show_replica)
        self.viewer = FrameViewer()
        watch = QWidget()
        column = QVBoxLayout(watch)
        column.addWidget(self.replica_box)
        column.addWidget(self.viewer, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(plots, "survival and temperature")
        self.tabs.addTab(watch, "trajectory (3-D)")
        self.arrange([self.progress], [form, self.table], self.tabs)
        self.timer = self.poller(self.refresh_temperature)
        session.runs_changed.connect(self.refresh_runs)
        self.refresh_runs()

    def refresh_runs(self) -> None:
        keep = self.run_box.currentData()
        self.run_box.clear()
        for run in self.session.runs():
            self.run_box.addItem(run.name, str(run))
        if keep is not None and self.run_box.findData(keep) >= 0:
            self.run_box.setCurrentIndex(self.run_box.findData(keep))

    def start(self) -> None:
        run, data = self.run_box.currentData(), self.session.data
        if not run or not data:
            self.show_error("simulate: needs a run and starting structures (Data pane)", "")
            return
        try:
            pressure = float(self.pressure.text()) if self.pressure.text().strip() else None
        except ValueError:
            self.show_error(f"simulate: pressure must be a number of GPa, got {self.pressure.text()!r}", "")
            return
        self.out = self.session.new_path(f"md-{Path(run).name}")
        self.summary, self.live = None, [(0.0, 1.0)]
        fill_table(self.table, ["quantity", "value"], [])  # nothing of the previous run stays beside the new one
        self.replica_box.clear()
        self.viewer.set_frames([])
        self.plot_live_survival()
        self.thermo.show_final(lambda figure: draw_temperature(figure, np.zeros(0), np.zeros(0),
                                                               self.temperature.value()))
        worker = self.run(simulate, run, data, out=str(self.out), replicas=self.replicas.value(),
                          temperature=self.temperature.value(), time=self.time.value(),
                          timestep=self.timestep.value(), integrator=self.integrator.currentText(),
                          seed=self.seed.value(), pressure=pressure,
                          pressure_coupling=self.coupling.currentText(), progress=self.progress, name="simulate",
                          on_result=self.show_summary, **self.session.compute_options())
        worker.signals.progress.connect(self._progress)
        worker.signals.finished.connect(self._finished)
        worker.signals.cancelled.connect(self._stopped)
        self.go.setEnabled(False)
        self.timer.start()

    def _progress(self, desc: str, n: int, total, postfix: dict) -> None:
        match = STABLE.search(" ".join(str(v) for v in postfix.values()))
        if match:
            fraction = int(match.group(1)) / int(match.group(2))
            if fraction != self.live[-1][1]:  # redraw when a replica collapses, not on every report
                self.live.append((n * self.timestep.value() / 1000.0, fraction))
                self.plot_live_survival()

    def plot_live_survival(self) -> None:
        points, total = list(self.live), self.time.value()
        self.survival.show_live(lambda figure: draw_live_survival(figure, points, total))

    def refresh_temperature(self) -> None:
        if self.out is not None and self.changed(self.out / "thermo.csv", "thermo"):
            self.plot_temperature(live=True)

    def plot_temperature(self, live: bool = False) -> None:
        if self.out is None:
            return
        times, temps = mean_temperature_trace(self.out / "thermo.csv")
        target = self.temperature.value()
        draw = lambda figure: draw_temperature(figure, times, temps, target)  # noqa: E731
        (self.thermo.show_live if live else self.thermo.show_final)(draw)

    def show_summary(self, summary: dict) -> None:
        self.summary = summary
        name = Path(summary["model"]).name
        times, collapsed = {name: summary["time_to_collapse_ps"]}, {name: summary["collapsed"]}
        title = f"Survival ({summary.get('criterion', 'bond')})"
        self.survival.show_final(lambda figure: draw_survival(figure.add_subplot(), times, summary["time_ps"],
                                                              collapsed, title=title))
        rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in format_simulation(summary).splitlines()[1:]]
        fill_table(self.table, ["quantity", "value"], [row for row in rows if len(row) == 2])
        self.fill_replicas(summary)

    def fill_replicas(self, summary: dict) -> None:
        """One entry per replica, the collapsed ones first (their trajectories end at the collapse)."""
        self.replica_box.blockSignals(True)
        self.replica_box.clear()
        order = sorted(range(summary["replicas"]), key=lambda r: (not summary["collapsed"][r], r))
        for r in order:
            time = summary["time_to_collapse_ps"][r]
            what = (f"collapsed at {time:.3f} ps ({summary['collapse_reason'][r]})" if summary["collapsed"][r]
                    else f"stable for {time:.3f} ps")
            self.replica_box.addItem(f"replica {r}: {what}", r)
        self.replica_box.blockSignals(False)
        self.show_replica()

    def show_replica(self) -> None:
        """The chosen replica's trajectory against the simulation's reference, at its collapse if it had one."""
        r = self.replica_box.currentData()
        if r is None or self.out is None or self.summary is None:
            return
        frames = read_replica(self.out, r)
        collapsed = bool(self.summary["collapsed"][r])
        last = len(frames) - 1
        self.viewer.set_frames(frames, self._reference(), marked=last if collapsed else None,
                               start=max(last, 0) if collapsed else 0)

    def _reference(self):
        """The frames the simulation judged against (simulation.json's reference), as a BondReference."""
        import json

        from ... import read_structures
        from ...simulate.stability import BondReference

        path = json.loads((self.out / "simulation.json").read_text())["reference"]
        if getattr(self, "_reference_cache", (None, None))[0] != path:
            self._reference_cache = (path, BondReference(read_structures(path), path))
        return self._reference_cache[1]

    def _stopped(self) -> None:
        import json

        path = self.out / "summary.json" if self.out else None
        if path is not None and path.exists():  # written on the way out: the steps done so far
            self.show_summary(json.loads(path.read_text()))

    def _finished(self) -> None:
        self.timer.stop()
        self.plot_temperature()
        self.go.setEnabled(True)
