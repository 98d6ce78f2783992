"""Write structures with their labels to extxyz or an ASE db, atomically.

:func:`write_structures` writes to a temporary name and renames, so an interrupted write
never leaves a partial file. :class:`FrameWriter` streams frames of a running simulation
into ``NAME.partial`` (each frame flushed whole, so the file is valid extxyz at every
moment) and renames it to ``NAME`` when closed, also after Ctrl-C or an exception.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms

from ..errors import file_error
from ..utils.atomic import atomic_path
from .labels import attach_labels, energy_of, forces_of, stress_of
from .readers import detect_format


def _clean(atoms: Atoms) -> Atoms:
    """A copy holding only numbers, positions, cell, pbc, the energy/forces/stress labels, the thermostat's and the
    kinetic temperature (K), the time (ps), the trajectory index, the cell scale, the pressure and the labels'
    reference method."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    if "temperature" in atoms.info:
        out.info["temperature"] = float(atoms.info["temperature"])
    if "kinetic_temperature" in atoms.info:  # generate's instantaneous temperature, K
        out.info["kinetic_temperature"] = float(atoms.info["kinetic_temperature"])
    if "time_ps" in atoms.info:  # when in its trajectory the frame was taken (stability reads it)
        out.info["time_ps"] = float(atoms.info["time_ps"])
    if "trajectory" in atoms.info:  # which of generate's seeded trajectories a frame comes from
        out.info["trajectory"] = int(atoms.info["trajectory"])
    if "cell_scale" in atoms.info:  # the factor generate --cell-scale scaled the crystal's cell by
        out.info["cell_scale"] = float(atoms.info["cell_scale"])
    if "pressure_GPa" in atoms.info:  # the pressure of generate --pressure's NPT run
        out.info["pressure_GPa"] = float(atoms.info["pressure_GPa"])
    if isinstance(atoms.info.get("reference_method"), str):  # the labels' method (train --element-energies auto)
        out.info["reference_method"] = atoms.info["reference_method"]
    return attach_labels(out, energy_of(atoms), forces_of(atoms), stress_of(atoms))


def frame_text(atoms: Atoms) -> str:
    """One frame as the extxyz text :class:`FrameWriter` and :func:`write_structures` write (Å, eV, eV/Å)."""
    import io

    import ase.io

    buffer = io.StringIO()
    ase.io.write(buffer, _clean(atoms), format="extxyz")
    return buffer.getvalue()


def write_structures(path: str | Path, structures: Sequence[Atoms]) -> Path:
    """Write ``structures`` (Å, eV, eV/Å) to ``path``: ``.xyz``/``.extxyz`` or ``.db``."""
    import ase.db
    import ase.io

    path = Path(path)
    fmt = detect_format(path)
    if fmt not in ("extxyz", "db"):
        raise file_error(path, None, "can only write extxyz (.xyz, .extxyz) or ASE db (.db)")
    with atomic_path(path) as tmp:
        if fmt == "extxyz":
            ase.io.write(tmp, [_clean(a) for a in structures], format="extxyz")
        else:
            with ase.db.connect(str(tmp), type="db", append=False) as db:
                for atoms in structures:
                    db.write(_clean(atoms))
    return path


class FrameWriter:
    """Append frames to ``path`` as extxyz, crash-safely.

    Frames go to ``path + '.partial'`` and are flushed one by one; :meth:`close` renames the
    file to ``path``. Use as a context manager: the rename happens on normal exit, on
    ``KeyboardInterrupt`` and on errors, so the frames written so far are never lost. A writer closed
    before its first frame (stopped during equilibration) removes its file: no empty ``path`` is left for a
    reader, or a script that checks whether ``path`` exists, to take for data.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._handle = open(self.partial, "w")
        self.count = 0

    def write(self, atoms: Atoms) -> None:
        # format first, then one write call: an interrupt never leaves half a frame
        self._handle.write(frame_text(atoms))
        self._handle.flush()
        self.count += 1

    def close(self) -> Path:
        if not self._handle.closed:
            self._handle.close()
            if self.count:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink()
        return self.path

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
