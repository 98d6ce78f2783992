"""Neighbour lists: all pairs within the cutoff, for molecules and periodic cells.

Molecules (no periodic direction) use all pairs inside each structure, found in torch; periodic
structures use vesin's cell list (no hand-written periodic code). The list is built from
detached positions; distances are then recomputed from ``positions`` so they stay
differentiable, as are the periodic shifts ``S @ cell``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch


@dataclass
class Edges:
    """Directed pairs ``i -> j`` within the cutoff (both directions present).

    ``vectors = x_j − x_i + shifts`` (Å) and ``distances = |vectors|`` are differentiable in the
    positions.
    """

    i: torch.Tensor
    j: torch.Tensor
    vectors: torch.Tensor
    distances: torch.Tensor
    #: (n_edges, 3) Å, the periodic image offset ``S @ cell`` inside ``vectors`` (zeros for molecules),
    #: differentiable in the cell; adapters to external models pass it on
    shifts: torch.Tensor | None = None
    #: (n_edges, 3) integer image counts ``S`` (float dtype)
    unit_shifts: torch.Tensor | None = None

    def half(self) -> torch.Tensor:
        """Boolean mask keeping one direction of every pair: i < j, and for an atom's own periodic
        images (i == j, vector = shift · cell exactly) the lexicographically positive vector."""
        v = self.vectors.detach()
        positive = (v[:, 0] > 0) | ((v[:, 0] == 0) & ((v[:, 1] > 0) | ((v[:, 1] == 0) & (v[:, 2] > 0))))
        return (self.i < self.j) | ((self.i == self.j) & positive)


def _molecule_pairs(batch: AtomsBatch, molecule: torch.Tensor, cutoff: float):
    """Pairs within each non-periodic structure: all pairs of its atoms, then a distance mask.

    Relies on the AtomsBatch layout: the atoms of a structure are contiguous and in order.
    """
    index = batch.structure_index
    device = index.device
    counts = torch.bincount(index, minlength=batch.n_structures)
    offsets = torch.cumsum(counts, 0) - counts
    sizes = counts[index] * molecule[index]  # periodic structures get no pairs here
    i = torch.repeat_interleave(torch.arange(batch.n_atoms, device=device), sizes)
    within = torch.arange(i.numel(), device=device) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
    j = offsets[index[i]] + within
    pos = batch.positions.detach()
    keep = (i != j) & ((pos[j] - pos[i]).norm(dim=1) < cutoff)
    return i[keep], j[keep]


def _periodic_pairs(batch: AtomsBatch, structures: list[int], cutoff: float):
    import vesin

    index = batch.structure_index.cpu().numpy()
    positions = batch.positions.detach().cpu().double().numpy()
    calculator = vesin.NeighborList(cutoff=cutoff, full_list=True)
    all_i, all_j, all_s = [], [], []
    for s in structures:
        atoms = np.nonzero(index == s)[0]
        i, j, shifts = calculator.compute(
            points=positions[atoms], box=batch.cell[s].detach().cpu().double().numpy(),
            periodic=batch.pbc[s].cpu().numpy(), quantities="ijS",
        )
        all_i.append(atoms[i])
        all_j.append(atoms[j])
        all_s.append(shifts)
    device = batch.positions.device
    return (
        torch.as_tensor(np.concatenate(all_i), dtype=torch.long, device=device),
        torch.as_tensor(np.concatenate(all_j), dtype=torch.long, device=device),
        torch.as_tensor(np.concatenate(all_s), dtype=batch.positions.dtype, device=device),
    )


def neighbor_list(batch: AtomsBatch, cutoff: float) -> Edges:
    """All directed pairs with distance < ``cutoff`` (Å) in ``batch``."""
    periodic = batch.pbc.any(dim=1)
    i, j = _molecule_pairs(batch, ~periodic, cutoff)
    vectors = batch.positions[j] - batch.positions[i]
    unit_shifts = torch.zeros_like(vectors, requires_grad=False)
    offsets = torch.zeros_like(unit_shifts)
    if bool(periodic.any()):
        pi, pj, shifts = _periodic_pairs(batch, torch.nonzero(periodic).squeeze(1).tolist(), cutoff)
        cell = batch.cell[batch.structure_index[pi]]
        offset = torch.einsum("ek,ekl->el", shifts, cell)
        vectors = torch.cat([vectors, batch.positions[pj] - batch.positions[pi] + offset])
        i, j = torch.cat([i, pi]), torch.cat([j, pj])
        unit_shifts = torch.cat([unit_shifts, shifts.to(unit_shifts.dtype)])
        offsets = torch.cat([offsets, offset])
    distances = torch.linalg.vector_norm(vectors, dim=1)
    return Edges(i=i, j=j, vectors=vectors, distances=distances, shifts=offsets, unit_shifts=unit_shifts)
