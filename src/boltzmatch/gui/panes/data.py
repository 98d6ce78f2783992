"""Data: open a structure file (extxyz, ASE db, npz) or generate reference data, see its summary,
energy and force histograms, and step through the frames."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
)

from ... import generate, read_structures, summarize
from ...data.labels import energy_of, forces_of
from ...data.systems import MD17_MOLECULES, OPENMM_SYSTEMS
from ..viewer import FrameViewer
from ..widgets import PathField, PlotPanel, ProgressRow, fill_table
from .base import Pane

STRUCTURE_FILTERS = "Structures (*.xyz *.extxyz *.db *.npz *.traj);;All files (*)"


def load_frames(path: str) -> tuple[list, dict]:
    """The frames of ``path`` and their summary (a worker's job: files can be large)."""
    frames = read_structures(path)
    return frames, summarize(frames)


def generate_and_load(system: str, out: str, **kwargs) -> tuple[list, dict]:
    generate(system, out=out, **kwargs)
    return load_frames(out)


class DataPane(Pane):
    title = "Data"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.frames: list = []
        self.summary: dict = {}
        self.path = PathField(caption="Open structures", filters=STRUCTURE_FILTERS)
        open_button = QPushButton("Open")
        open_button.clicked.connect(lambda: self.open(self.path.text()))
        self.recent = QComboBox()
        self.recent.setPlaceholderText("recent files")
        self.recent.addItems(session.recent_files())
        self.recent.textActivated.connect(self.open)

        generator = QGroupBox("Generate reference data (MD with a reference method)")
        form = QFormLayout(generator)
        self.system = QComboBox()
        self.system.setEditable(True)
        self.system.addItems([*MD17_MOLECULES, *OPENMM_SYSTEMS, "Cu-fcc-2x2x2"])
        self.calculator = QComboBox()
        self.calculator.addItems(["xtb", "emt", "openmm"])
        self.temperature = QDoubleSpinBox(decimals=1, minimum=1.0, maximum=5000.0, value=500.0, suffix=" K")
        self.time = QDoubleSpinBox(decimals=3, minimum=0.005, maximum=10_000.0, value=1.0, singleStep=0.1, suffix=" ps")
        self.interval = QSpinBox(minimum=1, maximum=10_000, value=10)
        self.timestep = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=10.0, value=0.5, suffix=" fs")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        for label, widget in (("system", self.system), ("calculator", self.calculator),
                              ("temperature", self.temperature), ("time", self.time),
                              ("keep every", self.interval), ("timestep", self.timestep), ("seed", self.seed)):
            form.addRow(label, widget)
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.start_generate)
        form.addRow(self.generate_button)
        self.progress = ProgressRow()

        self.table = QTableWidget()
        self.histograms = PlotPanel(size=(5.0, 3.0))
        self.viewer = FrameViewer()

        top = QHBoxLayout()
        top.addWidget(QLabel("structures"))
        top.addWidget(self.path, 1)
        top.addWidget(open_button)
        top.addWidget(self.recent)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.histograms)
        right.addWidget(self.viewer)
        self.arrange([top, self.progress], [generator, self.table], right)

    def open(self, path: str) -> None:
        if path:
            self.path.edit.setText(path)
            self.run(load_frames, path, progress=self.progress, name="read", on_result=self._loaded_from(path))

    def start_generate(self) -> None:
        system = self.system.currentText().strip()
        out = self.session.new_path(f"{system}-{self.calculator.currentText()}-{self.temperature.value():.0f}K",
                                    ".xyz")
        self.run(generate_and_load, system, str(out), calculator=self.calculator.currentText(),
                 temperature=self.temperature.value(), time=self.time.value(), interval=self.interval.value(),
                 timestep=self.timestep.value(), seed=self.seed.value(),
                 equilibration=min(1000, round(self.time.value() * 1000 / self.timestep.value())),
                 progress=self.progress, name="generate", on_result=self._loaded_from(str(out)))

    def _loaded_from(self, path: str):
        def done(result) -> None:
            self.frames, self.summary = result
            self.path.edit.setText(path)
            self.session.set_data(path)
            self.recent.clear()
            self.recent.addItems(self.session.recent_files())
            self.show_summary()
            self.viewer.set_frames(self.frames)
        return done

    def show_summary(self) -> None:
        s = self.summary
        formulas = ", ".join(f"{k} × {v}" for k, v in s["formulas"].items())
        rows = [["structures", s["n_structures"]], ["formulas", formulas],
                ["elements", " ".join(s["elements"])], ["atoms", f"{s['atoms_min']}–{s['atoms_max']}"],
                ["periodic", s["periodic"]], ["labels", ", ".join(s["labels"]) or "none"]]
        for key, unit in (("energy", "eV"), ("forces", "eV/Å")):
            for stat, value in s.get(key, {}).items():  # eV to 0.1 meV: −1,000 eV at 4 digits hid every difference
                rows.append([f"{key} {stat} ({unit})", f"{value:.4f}" if isinstance(value, float) else value])
        fill_table(self.table, ["quantity", "value"], rows)
        figure = self.histograms.clear()
        energies = [energy_of(a) for a in self.frames]
        forces = [forces_of(a) for a in self.frames]
        axes = figure.subplots(1, 2)
        if all(e is not None for e in energies):
            axes[0].hist(energies, bins=40, color="C0")
        axes[0].set_xlabel("energy (eV)")
        axes[0].set_ylabel("frames")
        if all(f is not None for f in forces):
            axes[1].hist(np.linalg.norm(np.concatenate(forces), axis=1), bins=40, color="C1")
        axes[1].set_xlabel("|F| (eV/Å)")
        axes[1].set_ylabel("atoms")
        self.histograms.draw()
