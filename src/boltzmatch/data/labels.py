"""Labels attached to structures: energy (eV), forces (eV/Å) and, for periodic cells, stress (eV/Å³).

boltzmatch keeps labels the way ASE does, in a :class:`SinglePointCalculator` on each
``ase.Atoms``, so ``atoms.get_potential_energy()`` and ``atoms.get_forces()`` work on every
structure a reader returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def make_structure(
    numbers: np.ndarray,
    positions: np.ndarray,
    *,
    cell: np.ndarray | None = None,
    pbc: np.ndarray | bool = False,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    stress: np.ndarray | None = None,
) -> Atoms:
    """Build an ``ase.Atoms`` with positions in Å and optional energy (eV), forces (eV/Å) and stress (eV/Å³)."""
    atoms = Atoms(numbers=np.asarray(numbers, dtype=int), positions=np.asarray(positions, dtype=float))
    if cell is not None:
        atoms.cell = np.asarray(cell, dtype=float)
    atoms.pbc = pbc
    attach_labels(atoms, energy, forces, stress)
    return atoms


def voigt_stress(stress) -> np.ndarray:
    """A stress as ASE's Voigt 6-vector (xx, yy, zz, yz, xz, xy) from 6 or 3×3 (9) values; units unchanged."""
    from ase.stress import full_3x3_to_voigt_6_stress

    values = np.asarray(stress, dtype=float)
    if values.size == 9:
        return full_3x3_to_voigt_6_stress(values.reshape(3, 3))
    if values.size != 6:
        raise ValueError(f"a stress has 6 (Voigt) or 9 (3×3) values, found {values.size}")
    return values.reshape(6)


def attach_labels(atoms: Atoms, energy: float | None, forces: np.ndarray | None,
                  stress: np.ndarray | None = None) -> Atoms:
    """Attach energy (eV), forces (eV/Å) and a stress (eV/Å³, Voigt or 3×3) to ``atoms``; a no-op when all are
    ``None``."""
    results = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=float).reshape(len(atoms), 3)
    if stress is not None:
        results["stress"] = voigt_stress(stress)
    atoms.calc = SinglePointCalculator(atoms, **results) if results else None
    return atoms


def energy_of(atoms: Atoms) -> float | None:
    """The reference energy of ``atoms`` in eV, or ``None`` if it has none."""
    if atoms.calc is None:
        return None
    value = atoms.calc.results.get("energy")
    return None if value is None else float(value)


def forces_of(atoms: Atoms) -> np.ndarray | None:
    """The reference forces of ``atoms`` in eV/Å, shape ``(n_atoms, 3)``, or ``None``."""
    if atoms.calc is None:
        return None
    value = atoms.calc.results.get("forces")
    return None if value is None else np.asarray(value, dtype=float)


def has_energy(structures: Sequence[Atoms]) -> bool:
    """True when every structure carries an energy."""
    return len(structures) > 0 and all(energy_of(a) is not None for a in structures)


def has_forces(structures: Sequence[Atoms]) -> bool:
    """True when every structure carries forces."""
    return len(structures) > 0 and all(forces_of(a) is not None for a in structures)


def stress_of(atoms: Atoms) -> np.ndarray | None:
    """The reference stress of ``atoms`` in eV/Å³, ASE's Voigt order (6,), or ``None``."""
    if atoms.calc is None:
        return None
    value = atoms.calc.results.get("stress")
    return None if value is None else voigt_stress(value)


def reference_stress(atoms: Atoms) -> np.ndarray | None:
    """The stress (eV/Å³, Voigt) ``atoms``' calculator computes for a crystal (3-D periodic) where it computes one
    (EMT does; xTB here labels molecules), else ``None``: the label that training on stress reads."""
    if not atoms.pbc.all() or atoms.calc is None or "stress" not in atoms.calc.implemented_properties:
        return None
    return voigt_stress(atoms.get_stress(apply_constraint=False))


def has_stress(structures: Sequence[Atoms]) -> bool:
    """True when some structure is a crystal (periodic in 3-D) that carries a stress: training on stress then
    reads the stress of those that carry one (the rest, molecules among them, add no stress term)."""
    return any(a.pbc.all() and stress_of(a) is not None for a in structures)
