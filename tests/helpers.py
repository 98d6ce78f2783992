"""Test helpers: small labelled structure sets made in memory (no downloads)."""

from __future__ import annotations

import numpy as np
import torch
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


class HarmonicWell(torch.nn.Module):
    """U = ½ k Σ_i |x_i − c_i|² per structure (eV, k in eV/Å²): a model with known Boltzmann statistics.

    ``centres`` (n_atoms_per_structure, 3) in Å; default: every atom tethered to the origin.
    """

    def __init__(self, k: float = 1.0, centres: np.ndarray | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(float(k), dtype=dtype))
        self.centres = None if centres is None else torch.as_tensor(centres, dtype=dtype)

    def forward(self, batch) -> torch.Tensor:
        x = batch.positions
        if self.centres is not None:
            counts = batch.atoms_per_structure
            x = x - self.centres.repeat(len(counts), 1)
        atomic = 0.5 * self.k * (x**2).sum(-1)
        return torch.zeros(batch.n_structures, dtype=x.dtype, device=x.device).index_add(0, batch.structure_index,
                                                                                          atomic)
