"""The pairs of every structure of a data set within a model's cutoff, found once, before training.

A training batch then gathers its pairs the way it gathers its atoms (:class:`~boltzmatch.data.packed.
PackedStructures` calls :class:`PackedPairs` for them): no search per batch, and for molecules no read-back
from a GPU at all (the search read back twice per batch: its candidate count and the count within the
cutoff). SchNetPack and MACE do the same in their data pipelines (a cached neighbour list; edges stored with
the data). The pairs are those of a fresh search of the batch, in its order, so a model computes exactly
what it computed before (tested bit for bit). Positions that move (denoising, Langevin samples) are new
tensors, which the pairs do not cover: the model searches them afresh.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..data.packed import PackedStructures, ranges
from .neighbors import PairList, find_pairs

#: at most this many pairs are kept (int32 indices: 8 bytes a pair, 268 MB); a larger data set searches per batch
MAX_PAIRS = 2**25


class PackedPairs:
    """Per structure, its pairs ``i -> j`` within ``cutoff`` (Å) as atom indices local to the structure (and the
    periodic image counts where the data set has periodic structures), in the order of a fresh search."""

    def __init__(self, local_i: torch.Tensor, local_j: torch.Tensor, unit_shifts: torch.Tensor | None,
                 host_counts: np.ndarray, host_periodic: np.ndarray, cutoff: float):
        self.local_i, self.local_j, self.unit_shifts = local_i, local_j, unit_shifts
        self.host_counts, self.host_periodic = host_counts, host_periodic
        self.counts = torch.as_tensor(host_counts)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.cutoff = float(cutoff)

    @classmethod
    def search(cls, packed: PackedStructures, cutoff: float, chunk: int = 2048,
               max_pairs: int = MAX_PAIRS) -> PackedPairs | None:
        """The pairs of every structure of ``packed`` (searched in chunks of ``chunk`` structures, where the data
        lies); ``None`` if there are more than ``max_pairs``."""
        local_i, local_j, shifts, counts = [], [], [], []
        total, any_periodic = 0, bool(packed.full.pbc.any())
        for start in range(0, len(packed), chunk):
            batch = packed.batch(np.arange(start, min(start + chunk, len(packed))), with_pairs=False)
            pairs = find_pairs(batch, cutoff)
            owner = batch.structure_index[pairs.i]
            order = torch.sort(owner, stable=True).indices  # grouped by structure, each in the search's order
            owner, i, j = owner[order], pairs.i[order], pairs.j[order]
            atom_starts = torch.cumsum(batch.atoms_per_structure, 0) - batch.atoms_per_structure
            local_i.append((i - atom_starts[owner]).to(torch.int32))
            local_j.append((j - atom_starts[owner]).to(torch.int32))
            counts.append(torch.bincount(owner, minlength=batch.n_structures))
            if any_periodic:
                shifts.append(torch.zeros(len(i), 3, dtype=batch.positions.dtype, device=i.device)
                              if pairs.unit_shifts is None else pairs.unit_shifts[order])
            total += len(i)
            if total > max_pairs:
                return None
        return cls(torch.cat(local_i), torch.cat(local_j), torch.cat(shifts) if any_periodic else None,
                   torch.cat(counts).cpu().numpy(), packed.full.pbc.any(dim=1).cpu().numpy(), cutoff)

    def to(self, device: torch.device | str) -> PackedPairs:
        self.local_i, self.local_j = self.local_i.to(device), self.local_j.to(device)
        self.counts, self.starts = self.counts.to(device), self.starts.to(device)
        if self.unit_shifts is not None:
            self.unit_shifts = self.unit_shifts.to(device)
        return self

    def __call__(self, host: np.ndarray, batch: AtomsBatch) -> PairList:
        """The pairs of ``batch``, made of the structures ``host`` (indices into the data set) in that order: those
        of molecules first, then those of periodic structures, each in batch order (a fresh search's order).
        Every size is known on the host."""
        device = self.counts.device
        periodic = self.host_periodic[host]
        order = np.concatenate([np.flatnonzero(~periodic), np.flatnonzero(periodic)])  # places in the batch
        n_pairs = int(self.host_counts[host[order]].sum())
        chosen = torch.as_tensor(host[order]).to(device, non_blocking=True)
        counts = self.counts[chosen]
        rows = ranges(self.starts[chosen], counts, n_pairs)
        atoms = batch.atoms_per_structure
        first_atom = (torch.cumsum(atoms, 0) - atoms)[torch.as_tensor(order).to(device, non_blocking=True)]
        offset = torch.repeat_interleave(first_atom, counts, output_size=n_pairs)
        unit_shifts = None if not periodic.any() else self.unit_shifts[rows]
        pairs = PairList(i=self.local_i[rows] + offset, j=self.local_j[rows] + offset, unit_shifts=unit_shifts,
                         cutoff=self.cutoff, positions=batch.positions.detach(), cell=batch.cell.detach(),
                         structure_index=batch.structure_index)
        return pairs.found_for(batch, exact=unit_shifts is None)
