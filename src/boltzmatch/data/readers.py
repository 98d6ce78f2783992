"""Read structures with energies and forces from extxyz/xyz, ASE db, ASE traj and MD17 npz.

Every reader returns a list of ``ase.Atoms`` in boltzmatch's units (positions in Å, energy
in eV, forces in eV/Å) with labels attached as in :mod:`boltzmatch.data.labels`. Bad input
raises :class:`~boltzmatch.errors.BoltzmatchError` with one line naming the file and the
line, row or key at fault.

Source units: the file's own statement wins where it makes one (SchNetPack's
``_property_unit_dict``/``_distance_unit`` metadata in an ASE db, ``e_unit``/``r_unit`` in
an sGDML npz); otherwise the caller's ``energy_unit``/``length_unit``; otherwise extxyz,
db and traj are taken to be in eV and Å (ASE's convention), and an npz with energies
must be given an ``energy_unit`` (MD17 files are usually in kcal/mol).
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ..errors import BoltzmatchError, file_error
from ..keys import ENERGY_CANDIDATES, FORCES_CANDIDATES
from ..units import energy_factor, length_factor
from .labels import make_structure, voigt_stress

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".db": "db", ".traj": "traj", ".npz": "npz"}


def detect_format(path: str | Path) -> str:
    """The reader for ``path`` from its extension (``extxyz``, ``db``, ``traj`` or ``npz``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise file_error(path, None, f"unknown file type {suffix or '(none)'!r}; expected one of {allowed}")
    return FORMATS[suffix]


def read_structures(
    path: str | Path,
    *,
    energy_key: str | None = None,
    forces_key: str | None = None,
    energy_unit: str | None = None,
    length_unit: str | None = None,
    require: Sequence[str] = (),
) -> list[Atoms]:
    """Read every structure in ``path``.

    Parameters
    ----------
    path
        An ``.xyz``/``.extxyz``, ``.db``, ``.traj`` or ``.npz`` file.
    energy_key, forces_key
        Where the labels live; by default the first of
        :data:`~boltzmatch.keys.ENERGY_CANDIDATES` / :data:`~boltzmatch.keys.FORCES_CANDIDATES`
        that the file has. A key named here must exist.
    energy_unit, length_unit
        Units of the file's energies and lengths (``eV``, ``kcal/mol``, ``hartree``;
        ``angstrom``, ``bohr``) when the file does not state them. Forces are taken to be in
        energy unit per length unit.
    require
        Labels that must be present: any of ``"energy"``, ``"forces"``.

    Returns
    -------
    list of ase.Atoms
        Positions in Å; energy in eV and forces in eV/Å where present.
    """
    path = Path(path)
    if not path.exists():
        raise file_error(path, None, "no such file")
    if path.is_dir():
        raise file_error(path, None, "is a directory; expected a structure file")
    fmt = detect_format(path)
    reader = {"extxyz": _read_extxyz, "db": _read_db, "traj": _read_traj, "npz": _read_npz}[fmt]
    structures = reader(path, energy_key, forces_key, energy_unit, length_unit)
    if not structures:
        raise file_error(path, None, "holds no structures")
    _check_labels(path, structures, require)
    return structures


# ----------------------------------------------------------------------------- checks


def _check_labels(path: Path, structures: list[Atoms], require: Sequence[str]) -> None:
    for name in require:
        if name == "stress":  # a stress term reads the structures that carry one
            if not any(atoms.calc is not None and "stress" in atoms.calc.results for atoms in structures):
                raise file_error(path, None, "no structure has a stress; this task needs stress labels on crystals")
            continue
        for i, atoms in enumerate(structures):
            if atoms.calc is None or name not in atoms.calc.results:
                raise file_error(path, f"structure {i}", f"has no {name}; this task needs {name} labels")
    for name in ("energy", "forces"):
        present = [atoms.calc is not None and name in atoms.calc.results for atoms in structures]
        if any(present) and not all(present):
            missing = present.index(False)
            raise file_error(path, f"structure {missing}", f"has no {name} while other structures do")


def _check_finite(path: Path, where: str, name: str, value) -> None:
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise file_error(path, where, f"{name} contains NaN or inf; expected finite numbers")


def _with_info(atoms: Atoms, scalars: dict, path: Path, where: str) -> Atoms:
    """Keep a ``temperature`` (K), a ``time_ps`` (ps: when in its trajectory the frame was taken; simulate's and
    generate's frames record it) and a ``reference_method`` (the labels' method: generate's and refine's frames
    record it; training's ``--element-energies auto`` reads it) the source stores beside the structure."""
    if isinstance(scalars.get("reference_method"), str):
        atoms.info["reference_method"] = scalars["reference_method"]
    if "time_ps" in scalars:
        try:
            atoms.info["time_ps"] = float(scalars["time_ps"])
        except (TypeError, ValueError):
            raise file_error(path, where, "time_ps is not a number") from None
    if "temperature" in scalars:
        try:
            value = float(scalars["temperature"])
        except (TypeError, ValueError):
            raise file_error(path, where, "temperature is not a number") from None
        if not np.isfinite(value) or value <= 0:
            raise file_error(path, where, f"temperature must be a positive number of K, found {value}")
        atoms.info["temperature"] = value
    return atoms


def _stress(value, e_factor: float, l_factor: float, path: Path, where: str) -> np.ndarray | None:
    """A stress label (6 Voigt or 9 values) in eV/Å³, or None."""
    if value is None:
        return None
    try:
        return voigt_stress(value) * e_factor / l_factor**3
    except (TypeError, ValueError) as exc:
        raise file_error(path, where, f"stress: {exc}") from None


def _validated(path: Path, where: str, atoms_args: dict) -> Atoms:
    for name in ("positions", "energy", "forces", "cell", "stress"):
        if atoms_args.get(name) is not None:
            _check_finite(path, where, name, atoms_args[name])
    numbers = np.asarray(atoms_args["numbers"])
    if numbers.size == 0:
        raise file_error(path, where, "has no atoms")
    if np.any(numbers < 1) or np.any(numbers > 118):
        raise file_error(path, where, f"atomic numbers must lie in 1..118, found {numbers.min()}..{numbers.max()}")
    return make_structure(**atoms_args)


def _pick_key(path: Path, where: str, available: set[str], explicit: str | None, candidates) -> str | None:
    if explicit is not None:
        if explicit not in available:
            shown = ", ".join(sorted(available)) or "none"
            raise file_error(path, where, f"key {explicit!r} not found; keys present: {shown}")
        return explicit
    for key in candidates:
        if key in available:
            return key
    return None


# ----------------------------------------------------------------------------- extxyz


def _scan_xyz(path: Path) -> list[int]:
    """Check the frame structure of an (ext)xyz file; return the first line of each frame (1-based)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise file_error(path, None, f"is not a text file ({exc.reason}); expected extxyz") from None
    lines = text.splitlines()
    starts: list[int] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            if all(not line.strip() for line in lines[i:]):
                break
            raise file_error(path, f"line {i + 1}", "blank line where the atom count of a frame was expected")
        tokens = lines[i].split()
        try:
            n_atoms = int(tokens[0])
        except ValueError:
            raise file_error(
                path, f"line {i + 1}", f"expected the atom count of frame {len(starts)} (an integer), "
                f"found {lines[i][:40]!r}"
            ) from None
        if n_atoms < 1 or len(tokens) != 1:
            raise file_error(path, f"line {i + 1}", f"expected a positive atom count alone, found {lines[i][:40]!r}")
        if i + 2 + n_atoms > len(lines):
            found = max(0, len(lines) - i - 2)
            raise file_error(
                path, f"line {len(lines)}",
                f"file ends inside frame {len(starts)}: expected {n_atoms} atom lines, found {found} (truncated?)",
            )
        for j in range(i + 2, i + 2 + n_atoms):
            atom = lines[j].split()
            if len(atom) < 4:
                raise file_error(path, f"line {j + 1}", "expected 'symbol x y z ...' with at least 4 columns")
            symbol = atom[0]
            if symbol not in atomic_numbers and not (symbol.isdigit() and 1 <= int(symbol) <= 118):
                raise file_error(path, f"line {j + 1}", f"unknown element {symbol!r}")
            for token in atom[1:4]:
                try:
                    float(token)
                except ValueError:
                    message = f"expected a number for a coordinate, found {token!r}"
                    raise file_error(path, f"line {j + 1}", message) from None
        starts.append(i + 1)
        i += 2 + n_atoms
    return starts


def _read_extxyz(path: Path, energy_key, forces_key, energy_unit, length_unit) -> list[Atoms]:
    import ase.io

    starts = _scan_xyz(path)
    try:
        with warnings.catch_warnings():  # ASE warns of every info value it cannot keep (ase.build's adsorbate_info)
            warnings.filterwarnings("ignore", message="Skipping unhashable information")
            frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as exc:  # ASE raises many types for malformed comment lines
        raise file_error(path, None, f"could not be parsed as extxyz ({type(exc).__name__}: {exc})") from None
    e_factor, l_factor = energy_factor(energy_unit), length_factor(length_unit)
    out = []
    for i, atoms in enumerate(frames):
        where = f"line {starts[i]} (structure {i})" if i < len(starts) else f"structure {i}"
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        scalars = {k: v for k, v in atoms.info.items() if np.ndim(v) == 0}
        scalars.update({k: v for k, v in results.items() if np.ndim(v) == 0})
        arrays = {k: v for k, v in atoms.arrays.items() if np.shape(v) == (len(atoms), 3)}
        arrays.update({k: v for k, v in results.items() if np.shape(v) == (len(atoms), 3)})
        e_key = _pick_key(path, where, set(scalars), energy_key, ENERGY_CANDIDATES)
        f_key = _pick_key(path, where, set(arrays) - {"positions"}, forces_key, FORCES_CANDIDATES)
        energy = None
        if e_key is not None:
            try:
                energy = float(scalars[e_key]) * e_factor
            except (TypeError, ValueError):
                raise file_error(path, where, f"energy key {e_key!r} is not a number") from None
        forces = None if f_key is None else np.asarray(arrays[f_key], dtype=float) * e_factor / l_factor
        cell = np.asarray(atoms.cell) * l_factor if atoms.cell.rank == 3 else None
        stress = _stress(results.get("stress", atoms.info.get("stress")), e_factor, l_factor, path, where)
        out.append(_with_info(
            _validated(path, where, dict(
                numbers=atoms.numbers, positions=atoms.positions * l_factor, cell=cell,
                pbc=atoms.pbc, energy=energy, forces=forces, stress=stress,
            )), scalars, path, where,
        ))
    return out


# ----------------------------------------------------------------------------- ASE db


def _split_force_unit(unit: str) -> tuple[str, str]:
    """``'kcal/mol/Ang'`` -> (``'kcal/mol'``, ``'Ang'``)."""
    energy, _, length = unit.rpartition("/")
    return energy, length


def _read_db(path: Path, energy_key, forces_key, energy_unit, length_unit) -> list[Atoms]:
    import ase.db

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as probe:
            probe.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        db = ase.db.connect(str(path), type="db")
        metadata = db.metadata or {}
        rows = list(db.select())
    except Exception as exc:
        raise file_error(path, None, f"is not a readable ASE database ({type(exc).__name__}: {exc})") from None

    unit_dict = metadata.get("_property_unit_dict", {}) or {}
    file_length_unit = metadata.get("_distance_unit")
    l_factor = length_factor(file_length_unit or length_unit)
    out = []
    for row in rows:
        where = f"row {row.id}"
        try:
            atoms = row.toatoms()
        except Exception as exc:
            raise file_error(path, where, f"could not be read ({type(exc).__name__}: {exc})") from None
        scalars: dict[str, float] = {}
        arrays: dict[str, np.ndarray] = {}
        if row.get("energy") is not None:
            scalars["energy"] = row.energy
        if row.get("forces") is not None:
            arrays["forces"] = row.forces
        for key, value in list(row.key_value_pairs.items()) + list((row.data or {}).items()):
            shape = np.shape(value)
            if shape in ((), (1,)) and np.issubdtype(np.asarray(value).dtype, np.number):
                scalars.setdefault(key, float(np.asarray(value).reshape(-1)[0]))
            elif shape == (len(atoms), 3):
                arrays.setdefault(key, np.asarray(value, dtype=float))
        e_key = _pick_key(path, where, set(scalars), energy_key, ENERGY_CANDIDATES)
        f_key = _pick_key(path, where, set(arrays), forces_key, FORCES_CANDIDATES)
        energy = forces = None
        if e_key is not None:
            energy = scalars[e_key] * energy_factor(unit_dict.get(e_key) or energy_unit)
        if f_key is not None:
            if f_key in unit_dict:
                e_unit, f_l_unit = _split_force_unit(unit_dict[f_key])
                f_factor = energy_factor(e_unit) / length_factor(f_l_unit)
            else:
                f_factor = energy_factor(energy_unit) / l_factor
            forces = arrays[f_key] * f_factor
        cell = np.asarray(atoms.cell) * l_factor if atoms.cell.rank == 3 else None
        out.append(
            _validated(path, where, dict(
                numbers=atoms.numbers, positions=atoms.positions * l_factor, cell=cell,
                pbc=atoms.pbc, energy=energy, forces=forces,
                stress=_stress(row.get("stress"), 1.0, 1.0, path, where),  # ASE's own row.stress: eV/Å³
            ))
        )
    return out


# ----------------------------------------------------------------------------- ASE traj


def _read_traj(path: Path, energy_key, forces_key, energy_unit, length_unit) -> list[Atoms]:
    import ase.io

    try:
        frames = ase.io.read(path, index=":", format="traj")
    except Exception as exc:
        raise file_error(path, None, f"is not a readable ASE trajectory ({type(exc).__name__}: {exc})") from None
    e_factor, l_factor = energy_factor(energy_unit), length_factor(length_unit)
    out = []
    for i, atoms in enumerate(frames):
        where = f"frame {i}"
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        e_key = _pick_key(path, where, {k for k, v in results.items() if np.ndim(v) == 0},
                          energy_key, ENERGY_CANDIDATES)
        f_key = _pick_key(path, where, {k for k, v in results.items() if np.ndim(v) == 2},
                          forces_key, FORCES_CANDIDATES)
        cell = np.asarray(atoms.cell) * l_factor if atoms.cell.rank == 3 else None
        out.append(_with_info(
            _validated(path, where, dict(
                numbers=atoms.numbers, positions=atoms.positions * l_factor, cell=cell, pbc=atoms.pbc,
                energy=None if e_key is None else float(results[e_key]) * e_factor,
                forces=None if f_key is None else np.asarray(results[f_key]) * e_factor / l_factor,
                stress=_stress(results.get("stress"), e_factor, l_factor, path, where),
            )), {k: v for k, v in atoms.info.items() if np.ndim(v) == 0}, path, where,
        ))
    return out


# ----------------------------------------------------------------------------- npz (MD17, rMD17)

NPZ_LAYOUTS = {
    "sgdml": {"numbers": "z", "positions": "R", "energy": "E", "forces": "F"},
    "rmd17": {"numbers": "nuclear_charges", "positions": "coords", "energy": "energies", "forces": "forces"},
}


def _npz_unit(data, key: str) -> str | None:
    if key not in data.files:
        return None
    return str(np.asarray(data[key]).reshape(-1)[0])


def _read_npz(path: Path, energy_key, forces_key, energy_unit, length_unit) -> list[Atoms]:
    try:
        data = np.load(path, allow_pickle=False)
        files = set(data.files)
    except Exception as exc:
        raise file_error(path, None, f"is not a readable npz archive ({type(exc).__name__}: {exc})") from None
    layout = next((k for k, v in NPZ_LAYOUTS.items() if {v["numbers"], v["positions"]} <= files), None)
    if layout is None:
        raise file_error(
            path, None, "expected the sGDML MD17 keys (z, R, E, F) or the rMD17 keys "
            f"(nuclear_charges, coords, energies, forces); found {', '.join(sorted(files))}"
        )
    keys = dict(NPZ_LAYOUTS[layout])
    if energy_key is not None:
        keys["energy"] = energy_key
    if forces_key is not None:
        keys["forces"] = forces_key
    for explicit in (energy_key, forces_key):
        if explicit is not None and explicit not in files:
            raise file_error(path, f"key {explicit!r}", f"not found; keys present: {', '.join(sorted(files))}")

    try:
        numbers = np.asarray(data[keys["numbers"]]).astype(int).reshape(-1)
        positions = np.asarray(data[keys["positions"]], dtype=float)
        energies = np.asarray(data[keys["energy"]], dtype=float).reshape(-1) if keys["energy"] in files else None
        forces = np.asarray(data[keys["forces"]], dtype=float) if keys["forces"] in files else None
    except Exception as exc:
        raise file_error(path, None, f"could not read arrays ({type(exc).__name__}: {exc})") from None
    if positions.ndim == 2:
        positions = positions[None]
    n_frames, n_atoms = positions.shape[0], numbers.shape[0]
    if positions.shape[1:] != (n_atoms, 3):
        raise file_error(path, f"key {keys['positions']!r}",
                         f"expected shape (n_frames, {n_atoms}, 3), found {positions.shape}")
    if energies is not None and energies.shape[0] != n_frames:
        raise file_error(path, f"key {keys['energy']!r}", f"expected {n_frames} energies, found {energies.shape[0]}")
    if forces is not None and forces.shape != positions.shape:
        raise file_error(path, f"key {keys['forces']!r}", f"expected shape {positions.shape}, found {forces.shape}")

    file_e_unit, file_l_unit = _npz_unit(data, "e_unit"), _npz_unit(data, "r_unit")
    e_unit = energy_unit or file_e_unit
    if e_unit is None and (energies is not None or forces is not None):
        raise BoltzmatchError(
            f"{path}: the file does not state its energy unit; pass energy_unit (--energy-unit), "
            "e.g. kcal/mol for MD17 and rMD17"
        )
    e_factor, l_factor = energy_factor(e_unit), length_factor(length_unit or file_l_unit)
    out = []
    for i in range(n_frames):
        out.append(
            _validated(path, f"frame {i}", dict(
                numbers=numbers, positions=positions[i] * l_factor,
                energy=None if energies is None else energies[i] * e_factor,
                forces=None if forces is None else forces[i] * e_factor / l_factor,
            ))
        )
    return out

