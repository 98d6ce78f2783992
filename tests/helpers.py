"""Test helpers: small labelled structure sets made in memory (no downloads)."""

from __future__ import annotations

import numpy as np
from ase.build import molecule

from boltzmatch.data import make_structure


def labelled_molecules(n: int = 5, seed: int = 0, name: str = "CH3CH2OH") -> list:
    """``n`` jittered copies of an ASE molecule with random energies (eV) and forces (eV/Å)."""
    rng = np.random.default_rng(seed)
    base = molecule(name)
    out = []
    for _ in range(n):
        out.append(
            make_structure(
                base.numbers, base.positions + 0.05 * rng.standard_normal(base.positions.shape),
                energy=float(rng.normal(-10.0, 1.0)), forces=rng.standard_normal((len(base), 3)),
            )
        )
    return out
