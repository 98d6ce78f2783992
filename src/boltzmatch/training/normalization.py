"""Per-element reference energies and an energy scale fitted from training data.

Reference energies e_Z (eV) solve the least-squares problem E_s ≈ Σ_Z n_{s,Z} e_Z over the
training structures (a tiny ridge keeps it solvable when elements always appear in the same
ratio). The scale (eV) is the RMS of the force components if forces exist, else the standard
deviation of the residual energy per atom; networks then learn numbers of order one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch


def fit_normalization(batch: AtomsBatch, elements: list[int]) -> tuple[dict[int, float], float]:
    """(element energies {Z: eV}, energy scale in eV) from a batch holding the training data."""
    counts = np.zeros((batch.n_structures, len(elements)))
    index = {z: k for k, z in enumerate(elements)}
    numbers = batch.numbers.cpu().numpy()
    structure = batch.structure_index.cpu().numpy()
    for z, k in index.items():
        np.add.at(counts[:, k], structure[numbers == z], 1.0)
    element_energy = dict.fromkeys(elements, 0.0)
    residual_per_atom = None
    if batch.energy is not None:
        energy = batch.energy.double().cpu().numpy()
        ridge = 1e-8 * np.eye(len(elements)) * max(1.0, float((counts**2).sum()))
        coef = np.linalg.solve(counts.T @ counts + ridge, counts.T @ energy)
        element_energy = {z: float(coef[k]) for z, k in index.items()}
        residual_per_atom = (energy - counts @ coef) / counts.sum(1)
    if batch.forces is not None:
        scale = float(torch.sqrt((batch.forces.double() ** 2).mean()))
    elif residual_per_atom is not None and residual_per_atom.size > 1:
        scale = float(residual_per_atom.std())
    else:
        scale = 1.0
    return element_energy, scale if scale > 1e-12 else 1.0
