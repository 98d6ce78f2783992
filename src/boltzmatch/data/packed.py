"""Structures packed into flat tensors once, so that training batches are gathers, not loops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from .atoms_batch import AtomsBatch


def ranges(starts: torch.Tensor, counts: torch.Tensor, total: int) -> torch.Tensor:
    """The rows ``starts[k] … starts[k] + counts[k] − 1`` for every k, one after another (``total`` of them,
    known on the host, so that a GPU need not be asked)."""
    offsets = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - offsets, counts, output_size=total) + torch.arange(total,
                                                                                           device=starts.device)


class PackedStructures:
    """All structures of a data set as flat tensors (Å, eV, eV/Å); :meth:`batch` gathers a subset."""

    def __init__(self, structures: Sequence[Atoms], dtype: torch.dtype = torch.float32):
        full = AtomsBatch.from_atoms(structures, dtype=dtype)
        self.full = full
        self.counts = full.atoms_per_structure
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.n_structures = full.n_structures
        self.elements = sorted({int(z) for z in full.numbers.unique().tolist()})
        #: the atom counts again on the host: a batch's size is known there, so gathering one reads nothing back
        self.host_counts = self.counts.numpy().copy()
        #: (n_structures, n_elements) atoms of each element (in ``elements`` order) per structure, on the host
        self.host_element_counts = np.zeros((self.n_structures, len(self.elements)), dtype=np.int64)
        np.add.at(self.host_element_counts, (full.structure_index.numpy(),
                                             np.searchsorted(self.elements, full.numbers.numpy())), 1)
        #: ``pairs(host_indices, batch) -> PairList``: the data set's own pairs for a batch
        #: (:class:`~boltzmatch.models.packed_pairs.PackedPairs`, which a trainer attaches); None: models search
        self.pairs = None

    def __len__(self) -> int:
        return self.n_structures

    @property
    def device(self) -> torch.device:
        return self.full.positions.device

    def to(self, device: torch.device | str) -> PackedStructures:
        """The whole data set on ``device`` (a GPU: every batch is then a gather there, no copies per step)."""
        self.full = self.full.to(device)
        self.counts, self.starts = self.counts.to(device), self.starts.to(device)
        if self.pairs is not None:
            self.pairs = self.pairs.to(device)
        return self

    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor, with_pairs: bool = True) -> AtomsBatch:
        """An AtomsBatch of the structures ``indices`` (in that order), with the data set's pairs where it has them
        (and ``with_pairs``). Every size is taken from the host copy of the counts (``output_size``), so on a GPU
        the gather never waits for the device."""
        device = self.counts.device
        host = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
        n_atoms = int(self.host_counts[host].sum())
        idx = torch.as_tensor(host).to(device, non_blocking=True)
        counts = self.counts[idx]
        atoms = ranges(self.starts[idx], counts, n_atoms)
        f = self.full
        batch = AtomsBatch(
            positions=f.positions[atoms],
            numbers=f.numbers[atoms],
            structure_index=torch.repeat_interleave(torch.arange(len(idx), device=device), counts,
                                                    output_size=n_atoms),
            cell=f.cell[idx],
            pbc=f.pbc[idx],
            energy=None if f.energy is None else f.energy[idx],
            forces=None if f.forces is None else f.forces[atoms],
            temperature=None if f.temperature is None else f.temperature[idx],
            elements=tuple(self.elements),
            element_counts=tuple((z, int(c)) for z, c in zip(self.elements, self.host_element_counts[host].sum(0),
                                                             strict=True) if c),
        )
        if with_pairs and self.pairs is not None:
            batch.pairs = self.pairs(host, batch)
        return batch
