"""QM9 from the ``qm9pack`` wheel (extra ``qm9``) as an ASE db in SchNetPack's QM9 layout.

``qm9pack`` ships the 130,831 characterised QM9 molecules (the 3,054 that failed the QM9
consistency check already removed, as SchNetPack's ``remove_uncharacterized=True`` does) as CSV:
B3LYP/6-31G(2df,p) geometries in Å and the 15 scalar properties. Nothing is downloaded.
SchNetPack's ``QM9`` class reads the db with ``remove_uncharacterized=True``; with its default
``False`` it expects all 133,885 rows and refuses this db (130,831 rows): pass
``remove_uncharacterized=True`` (the same molecules it would keep).

The db has SchNetPack's property names in ``row.data`` (one-element arrays, as SchNetPack
writes them and its reader needs), energies (U0, U, H, G, ZPVE, HOMO, LUMO,
gap) in eV, the other properties in their QM9 units, and the metadata SchNetPack writes:
``_property_unit_dict``, ``_distance_unit`` and ``atomrefs`` (per-element free-atom values of
U0, U, H, G in eV, ZPVE 0, Cv in cal/mol/K, 100 entries indexed by atomic number; the QM9 atomref
table of Ramakrishnan et al. 2014).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
from ase import Atoms, units

from ..errors import BoltzmatchError
from ..utils.atomic import atomic_path

HARTREE = units.Hartree  # eV
CSV_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
N_MOLECULES = 130_831

# SchNetPack name: (qm9pack column, factor to the stored unit, stored unit)
PROPERTIES: dict[str, tuple[str, float, str]] = {
    "rotational_constant_A": ("RotA_GHz", 1.0, "GHz"),
    "rotational_constant_B": ("RotB_GHz", 1.0, "GHz"),
    "rotational_constant_C": ("RotC_GHz", 1.0, "GHz"),
    "dipole_moment": ("Dipole_debye", 1.0, "Debye"),
    "isotropic_polarizability": ("Polarizability_bohr3", 1.0, "a0 a0 a0"),
    "homo": ("HOMO_au", HARTREE, "eV"),
    "lumo": ("LUMO_au", HARTREE, "eV"),
    "gap": ("HOMO_LUMO_gap_au", HARTREE, "eV"),
    "electronic_spatial_extent": ("R2_bohr2", 1.0, "a0 a0"),
    "zpve": ("ZPVE_au", HARTREE, "eV"),
    "energy_U0": ("InternalEnergy_0K_au", HARTREE, "eV"),
    "energy_U": ("InternalEnergy_298K_au", HARTREE, "eV"),
    "enthalpy_H": ("Enthalphy_298K_au", HARTREE, "eV"),
    "free_energy": ("GibbsFreeEnergy_298K_au", HARTREE, "eV"),
    "heat_capacity": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/mol/K"),
}

# free-atom references, Hartree (U0, U, H, G) and cal/mol/K (Cv), for H, C, N, O, F
_ATOMREF_TABLE = {
    1: (-0.500273, -0.498857, -0.497912, -0.510927, 2.981),
    6: (-37.846772, -37.845355, -37.844411, -37.861317, 2.981),
    7: (-54.583861, -54.582445, -54.581501, -54.598897, 2.981),
    8: (-75.064579, -75.063163, -75.062219, -75.079532, 2.981),
    9: (-99.718730, -99.717314, -99.716370, -99.733544, 2.981),
}


def atomrefs() -> dict[str, list[float]]:
    """SchNetPack's ``atomrefs`` metadata in the db's units: {property: 100 values by atomic number}."""
    out = {name: [0.0] * 100 for name in ("zpve", "energy_U0", "energy_U", "enthalpy_H", "free_energy",
                                         "heat_capacity")}
    for z, (u0, u, h, g, cv) in _ATOMREF_TABLE.items():
        for name, value in (("energy_U0", u0), ("energy_U", u), ("enthalpy_H", h), ("free_energy", g)):
            out[name][z] = value * HARTREE
        out["heat_capacity"][z] = cv
    return out


def qm9pack_data_folder() -> Path:
    """Where the ``qm9pack`` wheel keeps its CSV files (found without importing the package)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise BoltzmatchError("QM9 needs the qm9 extra: pip install 'boltzmatch[qm9]' (the qm9pack wheel)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [name for name in CSV_FILES if not (folder / name).exists()]
    if missing:
        raise BoltzmatchError(f"{folder}: qm9pack is incomplete, missing {', '.join(missing)}")
    return folder


def _rows(folder: Path):
    for name in CSV_FILES:
        with open(folder / name, newline="") as handle:
            for line_number, row in enumerate(csv.DictReader(handle), start=2):
                yield name, line_number, row


def _atoms(name: str, line: int, row: dict) -> Atoms:
    try:
        symbols = json.loads(row["Elements"].replace("'", '"'))
        positions = np.asarray(json.loads(row["XYZ_Ang"]), dtype=float)
        data = {key: float(row[column]) * factor for key, (column, factor, _) in PROPERTIES.items()}
    except (KeyError, ValueError, TypeError) as exc:
        raise BoltzmatchError(f"{name}, line {line}: not a qm9pack row ({type(exc).__name__}: {exc})") from None
    if positions.shape != (len(symbols), 3):
        raise BoltzmatchError(f"{name}, line {line}: {len(symbols)} elements but positions of shape "
                              f"{positions.shape}")
    atoms = Atoms(symbols=symbols, positions=positions)
    atoms.info["qm9_index"] = int(row["Index"])
    atoms.info["data"] = data
    return atoms


def write_qm9_db(out: str | Path, *, limit: int | None = None, seed: int = 0, progress: bool = True,
                 folder: str | Path | None = None) -> dict:
    """Write QM9 (or a random subset of ``limit`` molecules drawn with ``seed``) to the ASE db ``out``.

    Returns {"out", "n_molecules", "elements", "seed"}. The file appears only when complete.
    """
    import ase.db

    from ..utils.progress import progress_bar

    folder = Path(folder) if folder is not None else qm9pack_data_folder()
    out = Path(out)
    if out.suffix != ".db":
        raise BoltzmatchError(f"{out}: the QM9 db must end in .db")
    if limit is not None and limit < 1:
        raise BoltzmatchError(f"--limit must be a positive number of molecules, got {limit}")
    total = sum(sum(1 for _ in open(folder / name)) - 1 for name in CSV_FILES)
    chosen = None
    if limit is not None and limit < total:
        chosen = set(np.random.default_rng(seed).choice(total, size=limit, replace=False).tolist())
    n_written, elements = 0, set()
    bar = progress_bar(total=len(chosen) if chosen is not None else total, desc="QM9", unit="molecule",
                       disable=not progress)
    with atomic_path(out) as tmp, ase.db.connect(str(tmp), type="db", append=False) as db:
        for k, (name, line, row) in enumerate(_rows(folder)):
            if chosen is not None and k not in chosen:
                continue
            atoms = _atoms(name, line, row)
            # one-element arrays, as SchNetPack stores them (its reader calls .copy() on each value)
            data = {k: np.array([v]) for k, v in atoms.info.pop("data").items()}
            db.write(atoms, data=data, qm9_index=atoms.info.pop("qm9_index"))
            elements |= set(atoms.get_chemical_symbols())
            n_written += 1
            bar.update(1)
        db.metadata = {
            "_property_unit_dict": {key: unit for key, (_, _, unit) in PROPERTIES.items()},
            "_distance_unit": "Ang",
            "atomrefs": atomrefs(),
        }
    bar.close()
    return {"out": str(out), "n_molecules": n_written, "elements": sorted(elements), "seed": seed}


def property_statistics(path: str | Path) -> dict[str, dict]:
    """Mean, std, min and max of every scalar property in an ASE db's ``row.data`` with its unit."""
    import ase.db

    db = ase.db.connect(str(path), type="db")
    units_of = (db.metadata or {}).get("_property_unit_dict", {}) or {}
    values: dict[str, list[float]] = {}
    for row in db.select():
        for key, value in (row.data or {}).items():
            if np.size(value) == 1 and np.issubdtype(np.asarray(value).dtype, np.number):
                values.setdefault(key, []).append(float(np.asarray(value).reshape(-1)[0]))
    return {key: {"mean": float(np.mean(v)), "std": float(np.std(v)), "min": float(np.min(v)),
                  "max": float(np.max(v)), "unit": units_of.get(key, "?")} for key, v in values.items()}
