"""A 3-D view of structures and MD trajectories (matplotlib's 3-D axes: drag to rotate): atoms in Jmol colours,
bonds, a frame slider; against a reference, the reference's bonds that broke (beyond their mean + 0.5 Å, red,
dashed) and bonds the reference never has (orange), so the frame where a replica collapsed shows what broke.
Used by the Data, Compare and Simulate panes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ..data.geometry import bond_lengths, find_bonds
from ..data.labels import energy_of
from .widgets import PlotPanel

BROKEN_BEYOND = 0.5  # Å beyond a reference bond's mean length: the collapse criteria's default


def bond_changes(atoms, reference) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(broken, formed) atom pairs of ``atoms`` against ``reference`` (a BondReference): reference bonds
    longer than their mean + 0.5 Å, and bonded pairs (natural cutoffs × 1.2) that are no reference bond."""
    bonds, mean = reference.for_structure(atoms)
    lengths = bond_lengths([atoms], bonds)[0]
    broken = [(int(i), int(j)) for i, j, d, m in zip(bonds.i, bonds.j, lengths, mean, strict=True)
              if d > m + BROKEN_BEYOND]
    known = {tuple(sorted((int(i), int(j)))) for i, j in zip(bonds.i, bonds.j, strict=True)}
    now = find_bonds(atoms)
    formed = sorted({tuple(sorted((int(i), int(j)))) for i, j in zip(now.i, now.j, strict=True)} - known)
    return broken, formed


class FrameViewer(QWidget):
    """Atoms coloured by element (Jmol colours) with their bonds, one frame at a time; with a reference
    (:meth:`set_frames`), broken and new bonds are drawn and counted, and a marked frame (a collapse) named."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frames: list = []
        self.reference = None
        self.marked: int | None = None
        self.changes: tuple[list, list] = ([], [])
        self.plot = PlotPanel(size=(4.0, 4.0))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.show_frame)
        self.caption = QLabel("no frames")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("frame"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.caption)
        layout.addLayout(row)

    def set_frames(self, frames: list, reference=None, marked: int | None = None, start: int = 0) -> None:
        """Show ``frames`` from frame ``start``; ``reference`` (a BondReference) turns on the broken/new bonds,
        ``marked`` names a frame (the collapse) in the caption."""
        self.frames, self.reference, self.marked = frames, reference, marked
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(frames) - 1, 0))
        self.slider.setValue(start)
        self.slider.blockSignals(False)
        self.show_frame(start)

    def show_frame(self, index: int) -> None:
        from ase.data import covalent_radii
        from ase.data.colors import jmol_colors

        figure = self.plot.clear()
        if not self.frames:
            self.plot.draw()
            return
        index = int(np.clip(index, 0, len(self.frames) - 1))
        if self.slider.value() != index:
            self.slider.setValue(index)  # re-enters with the same index
            return
        atoms = self.frames[index]
        ax = figure.add_subplot(projection="3d")
        positions, numbers = atoms.get_positions(), atoms.get_atomic_numbers()
        bonds = find_bonds(atoms)
        for i, j, offset in zip(bonds.i, bonds.j, bonds.offsets, strict=True):
            segment = np.stack([positions[i], positions[j] + offset @ atoms.cell.array])
            ax.plot(segment[:, 0], segment[:, 1], segment[:, 2], color="0.5", lw=2)
        self.changes = bond_changes(atoms, self.reference) if self.reference is not None else ([], [])
        for pairs, style in ((self.changes[0], dict(color="red", ls="--", lw=3)),
                             (self.changes[1], dict(color="orange", lw=3))):
            for i, j in pairs:
                segment = positions[[i, j]]
                ax.plot(segment[:, 0], segment[:, 1], segment[:, 2], **style)
        ax.scatter(positions[:, 0], positions[:, 1], positions[:, 2], c=jmol_colors[numbers],
                   s=600 * covalent_radii[numbers] ** 2, edgecolors="k", depthshade=False)
        ax.set_box_aspect(np.ptp(positions, axis=0) + 1.0)
        ax.set_axis_off()
        self.caption.setText(self._caption(index, atoms))
        self.plot.draw()

    def _caption(self, index: int, atoms) -> str:
        from ase.data import chemical_symbols

        energy = energy_of(atoms)
        text = f"{index + 1}/{len(self.frames)} {atoms.get_chemical_formula()}"
        if atoms.info.get("time_ps") is not None:
            text += f"  t = {float(atoms.info['time_ps']):.3f} ps"
        if energy is not None:
            text += f"  E = {energy:.4f} eV"
        names = [f"{chemical_symbols[atoms.numbers[i]]}{i}–{chemical_symbols[atoms.numbers[j]]}{j}"
                 for i, j in self.changes[0]]
        if names:
            text += f"  broken: {', '.join(names)}"
        if self.changes[1]:
            text += f"  new bonds: {len(self.changes[1])}"
        if index == self.marked:
            text += "  (collapse)"
        return text
