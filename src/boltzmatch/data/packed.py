"""Structures packed into flat tensors once, so that training batches are gathers, not loops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from .atoms_batch import AtomsBatch


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The rows ``starts[k] … starts[k] + counts[k] − 1`` for every k, one after another (int64). Computed on the
    host, where a batch's counts are: a gather then needs one copy to a GPU instead of a dozen small kernels."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()), dtype=np.int64)


def to_device(device: torch.device, *arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    """int64 host arrays on ``device`` in one copy (on the CPU none: the tensors share the arrays' memory). To a
    GPU from pinned memory (torch's caching host allocator, as a DataLoader's ``pin_memory``), so that the copy
    is queued like a kernel and the host goes on."""
    flat = torch.from_numpy(np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays]))
    if device.type == "cuda":
        flat = flat.pin_memory()
    return torch.split(flat.to(device, non_blocking=True), [len(a) for a in arrays])


class PackedStructures:
    """All structures of a data set as flat tensors (Å, eV, eV/Å, stress eV/Å³); :meth:`batch` gathers a subset."""

    def __init__(self, structures: Sequence[Atoms], dtype: torch.dtype = torch.float32):
        full = AtomsBatch.from_atoms(structures, dtype=dtype)
        self.full = full
        self.counts = full.atoms_per_structure
        self.n_structures = full.n_structures
        self.elements = sorted({int(z) for z in full.numbers.unique().tolist()})
        #: the atom counts and first rows again on the host: a batch's rows are computed there (:meth:`batch`)
        self.host_counts = self.counts.numpy().copy()
        self.host_starts = np.cumsum(self.host_counts) - self.host_counts
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
        self.counts = self.counts.to(device)
        if self.pairs is not None:
            self.pairs = self.pairs.to(device)
        return self

    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor, with_pairs: bool = True) -> AtomsBatch:
        """An AtomsBatch of the structures ``indices`` (in that order), with the data set's pairs where it has them
        (and ``with_pairs``). The rows to gather are computed on the host, from its copy of the counts, and reach a
        GPU in one copy: the gather never waits for the device, and launches one kernel per field."""
        device = self.device
        host = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
        counts = self.host_counts[host]
        idx, atoms, structure_index = to_device(device, host, ranges(self.host_starts[host], counts),
                                                np.repeat(np.arange(len(host)), counts))
        f = self.full
        batch = AtomsBatch(
            positions=f.positions[atoms],
            numbers=f.numbers[atoms],
            structure_index=structure_index,
            cell=f.cell[idx],
            pbc=f.pbc[idx],
            energy=None if f.energy is None else f.energy[idx],
            forces=None if f.forces is None else f.forces[atoms],
            stress=None if f.stress is None else f.stress[idx],
            temperature=None if f.temperature is None else f.temperature[idx],
            elements=tuple(self.elements),
            element_counts=tuple((z, int(c)) for z, c in zip(self.elements, self.host_element_counts[host].sum(0),
                                                             strict=True) if c),
        )
        if with_pairs and self.pairs is not None:
            batch.pairs = self.pairs(host, batch)
        return batch
