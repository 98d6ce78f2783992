"""The exact Laplacian of per-structure energies with respect to all 3N positions.

ΔU = Σ_{a,c} ∂²U/∂x_{a,c}² (eV/Å²) is what implicit score matching needs (∇·F = −ΔU). Each
structure's energy depends only on its own atoms, so the same coordinate slot of every
structure is differentiated in one backward pass: 3·(largest atom count) passes per batch.
"""

from __future__ import annotations

import torch

from ..data.atoms_batch import AtomsBatch


def local_atom_index(batch: AtomsBatch) -> torch.Tensor:
    """(n_atoms,) position of each atom within its structure (0, 1, ...)."""
    counts = batch.atoms_per_structure
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(batch.n_atoms, device=counts.device) - starts[batch.structure_index]


def energy_laplacian(
    energy: torch.Tensor, positions: torch.Tensor, batch: AtomsBatch, *, create_graph: bool = False
) -> torch.Tensor:
    """ΔU per structure, shape (n_structures,), for ``energy`` computed from ``positions``."""
    (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=True)
    local = local_atom_index(batch)
    out = torch.zeros_like(energy)
    for slot in range(int(local.max()) + 1):
        atoms = torch.nonzero(local == slot).squeeze(1)
        for axis in range(3):
            (second,) = torch.autograd.grad(
                grad[atoms, axis].sum(), positions, create_graph=create_graph, retain_graph=True
            )
            out = out.index_add(0, batch.structure_index[atoms], second[atoms, axis])
    return out
