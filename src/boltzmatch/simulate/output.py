"""Streaming simulation output: one trajectory file per replica and a thermo log.

Every file is appended whole frame by whole frame and flushed, so a killed run leaves valid
files holding the frames written so far. :meth:`offsets` records how far each file had got at
a checkpoint; a resumed run truncates the files back to those offsets before appending.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

TRAJECTORY_FORMATS = ("extxyz", "traj")
THERMO_COLUMNS = ("step", "time_ps", "replica", "temperature_K", "potential_eV", "kinetic_eV", "total_eV",
                  "conserved_eV")
#: the columns a run under a barostat adds: the cell's volume, the instantaneous pressure and the lengths of the
#: three cell vectors (runs from before the lengths were written resume with the first two)
BAROSTAT_COLUMNS = ("volume_A3", "pressure_GPa", "a_A", "b_A", "c_A")


def format_extxyz_frame(numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray,
                        info: dict) -> str:
    """One extxyz frame (positions Å) readable by ``ase.io.read``; ``info`` values are numbers."""
    header = ["Properties=species:S:1:pos:R:3"]
    if pbc.any():
        header.insert(0, 'Lattice="' + " ".join(f"{x:.8f}" for x in cell.ravel()) + '"')
    header += [f"{key}={value:.8g}" if isinstance(value, float) else f"{key}={value}" for key, value in info.items()]
    header.append('pbc="' + " ".join("T" if p else "F" for p in pbc) + '"')
    lines = [str(len(numbers)), " ".join(header)]
    lines += [f"{chemical_symbols[z]} {x:.8f} {y:.8f} {w:.8f}" for z, (x, y, w) in zip(numbers, positions, strict=True)]
    return "\n".join(lines) + "\n"


def replica_file_name(replica: int, suffix: str) -> str:
    """The trajectory file of one replica (``replica_NNN.xyz`` or ``.traj``): the one place that names it."""
    return f"replica_{replica:03d}{suffix}"


class TrajectoryWriters:
    """``directory/replica_NNN.xyz`` (extxyz) or ``.traj`` (ASE trajectory), one per replica."""

    def __init__(self, directory: Path, structures: Sequence[Atoms], fmt: str = "extxyz",
                 offsets: dict[str, int] | None = None, frames: Sequence[int] | None = None):
        if fmt not in TRAJECTORY_FORMATS:
            from ..errors import BoltzmatchError

            raise BoltzmatchError(f"unknown trajectory format {fmt!r}; expected one of {', '.join(TRAJECTORY_FORMATS)}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.format = fmt
        self.structures = list(structures)
        suffix = ".xyz" if fmt == "extxyz" else ".traj"
        self.paths = [self.directory / replica_file_name(r, suffix) for r in range(len(structures))]
        self.frames = list(frames) if frames is not None else [0] * len(structures)
        self._handles: dict[int, object] = {}
        if offsets is not None:  # resuming: cut each file back to its state at the checkpoint
            for r, path in enumerate(self.paths):
                if fmt == "extxyz":
                    _truncate(path, offsets.get(path.name, 0))
                else:
                    _truncate_traj(path, self.frames[r])
        else:
            for path in self.paths:
                path.unlink(missing_ok=True)

    def _handle(self, replica: int):
        if replica not in self._handles:
            if self.format == "extxyz":
                self._handles[replica] = open(self.paths[replica], "a")
            else:
                from ase.io.trajectory import Trajectory

                self._handles[replica] = Trajectory(self.paths[replica], "a")
        return self._handles[replica]

    def write(self, replica: int, positions: np.ndarray, info: dict, cell: np.ndarray | None = None) -> None:
        """Append one frame of ``replica`` (positions Å; ``cell`` (3, 3) Å where a barostat changed it)."""
        template = self.structures[replica]
        cell = np.asarray(template.cell) if cell is None else cell
        handle = self._handle(replica)
        if self.format == "extxyz":
            handle.write(format_extxyz_frame(template.numbers, positions, cell, template.pbc, info))
            handle.flush()
        else:
            atoms = Atoms(template.numbers, positions=positions, cell=cell, pbc=template.pbc)
            atoms.info.update(info)
            handle.write(atoms)
        self.frames[replica] += 1

    def close_replica(self, replica: int) -> None:
        handle = self._handles.pop(replica, None)
        if handle is not None:
            handle.close()

    def offsets(self) -> dict[str, int]:
        """Current size in bytes of every trajectory file (for a checkpoint)."""
        for handle in self._handles.values():
            if self.format == "extxyz":
                handle.flush()
        return {p.name: (p.stat().st_size if p.exists() else 0) for p in self.paths}

    def close(self) -> None:
        for replica in list(self._handles):
            self.close_replica(replica)


class ThermoLog:
    """``thermo.csv``: one line per replica and recorded step (time ps, temperature K, energies eV; with
    ``barostat``, volume Å³, pressure GPa and cell lengths Å). Resumed (``offset``), it writes the columns of the
    file's own header."""

    def __init__(self, path: Path, offset: int | None = None, barostat: bool = False):
        self.path = Path(path)
        self.extra = len(BAROSTAT_COLUMNS) if barostat else 0
        if offset is None:
            self._handle = open(self.path, "w")
            self._handle.write(",".join(THERMO_COLUMNS + (BAROSTAT_COLUMNS if barostat else ())) + "\n")
            self._handle.flush()
        else:
            _truncate(self.path, offset)
            with open(self.path) as handle:
                header = handle.readline().strip()
            if header:
                self.extra = max(0, len(header.split(",")) - len(THERMO_COLUMNS))
            self._handle = open(self.path, "a")

    def write(self, rows: Sequence[Sequence]) -> None:
        """One line per row: the values of :data:`THERMO_COLUMNS` (and :data:`BAROSTAT_COLUMNS`), in order."""
        self._handle.write("".join(
            f"{s},{t:.6f},{r},{temp:.3f},{pot:.8f},{kin:.8f},{tot:.8f},{cons:.8f}"
            + "".join(f",{x:.6f}" for x in rest[:self.extra]) + "\n"
            for s, t, r, temp, pot, kin, tot, cons, *rest in rows))
        self._handle.flush()

    def offset(self) -> int:
        self._handle.flush()
        return self.path.stat().st_size

    def close(self) -> None:
        self._handle.close()


def read_thermo(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a ``thermo.csv`` as arrays."""
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
    data = np.atleast_1d(data)
    return {name: np.asarray(data[name]) for name in data.dtype.names}


def _truncate(path: Path, size: int) -> None:
    if path.exists():
        with open(path, "r+b") as handle:
            handle.truncate(size)
    elif size:
        raise FileNotFoundError(f"{path}: missing, but the checkpoint recorded {size} bytes")


def _truncate_traj(path: Path, frames: int) -> None:
    if not path.exists():
        return
    from ase.io.trajectory import Trajectory

    with Trajectory(path) as traj:
        kept = [traj[i] for i in range(min(frames, len(traj)))]
    tmp = path.with_name(path.name + ".tmp")
    with Trajectory(tmp, "w") as out:
        for atoms in kept:
            out.write(atoms)
    os.replace(tmp, path)


def read_replica(sim_dir: str | Path, replica: int) -> list[Atoms]:
    """The frames replica ``replica`` of a ``simulate`` folder wrote (up to and with its collapse frame)."""
    from ase.io import read

    for suffix in (".xyz", ".traj"):
        path = Path(sim_dir) / "trajectories" / replica_file_name(replica, suffix)
        if path.exists() and path.stat().st_size:
            return read(path, index=":")
    return []


def read_samples(sim_dir: str | Path) -> list[list[Atoms]]:
    """Frames of every replica of a ``simulate`` output folder (up to its collapse), in replica order."""
    from ase.io import read

    folder = Path(sim_dir) / "trajectories"
    paths = sorted(folder.glob("replica_*.xyz")) or sorted(folder.glob("replica_*.traj"))
    return [read(p, index=":") for p in paths if p.stat().st_size > 0]
