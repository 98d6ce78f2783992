"""The pairs of every structure of a data set within a model's cutoff, found once, before training.

A training batch then gathers its pairs the way it gathers its atoms (:class:`~boltzmatch.data.packed.
PackedStructures` calls :class:`PackedPairs` for them): no search per batch, and for molecules no read-back
from a GPU at all (the search read back twice per batch: its candidate count and the count within the
cutoff). SchNetPack and MACE do the same in their data pipelines (a cached neighbour list; edges stored with
the data). The pairs are those of a fresh search of the batch, in its order, so a model computes exactly
what it computed before (tested bit for bit). Positions that move (denoising, Langevin samples) are new
tensors, which the pairs do not cover: the model searches them afresh.

:meth:`PackedPairs.complete_pairs` is the other list a data set of molecules can bring: every pair of distinct atoms of
each structure, whatever the distance, for models that mask pairs beyond their cutoff. Its size depends on the atom
counts alone, so every batch of one molecule's frames has the same shape: what a CUDA graph of a training step
needs to be replayed (training/graphed_step.py). The pairs within the cutoff vary frame by frame as soon as a
molecule is larger than the cutoff (uracil at 4 Å: 108 to 116 of its 132), and so would every batch's shape.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..data.packed import PackedStructures, ranges, to_device
from .neighbors import PairList, find_pairs

#: at most this many pairs are kept (int32 indices: 8 bytes a pair, 268 MB); a larger data set searches per batch
MAX_PAIRS = 2**25
#: complete pairs replace those within the cutoff for CUDA graphs while they are at most this many times as many
#: (xTB aspirin at 5 Å: 1.39×, uracil 1.02×; a large molecule's all pairs would swamp the step). Not measured on a
#: GPU: at the small batches where graphs pay off, the step costs its kernel launches, not its pair count
COMPLETE_LIMIT = 2.0


class PackedPairs:
    """Per structure, its pairs ``i -> j`` within ``cutoff`` (Å) as atom indices local to the structure (and the
    periodic image counts where the data set has periodic structures), in the order of a fresh search."""

    def __init__(self, local_i: torch.Tensor, local_j: torch.Tensor, unit_shifts: torch.Tensor | None,
                 host_counts: np.ndarray, host_periodic: np.ndarray, atom_counts: np.ndarray, cutoff: float):
        self.unit_shifts = unit_shifts  # on the device (periodic data sets)
        #: on the host, where a batch's pairs are computed (:meth:`__call__`): per structure its pairs (local atom
        #: indices), pair count, whether it is periodic and its atom count
        self.local_i, self.local_j = local_i.cpu().numpy(), local_j.cpu().numpy()
        self.host_counts, self.host_periodic, self.atom_counts = host_counts, host_periodic, atom_counts
        self.host_starts = np.cumsum(host_counts) - host_counts
        self.device = torch.device("cpu")
        self.cutoff = float(cutoff)
        #: every pair of distinct atoms of each structure (:meth:`complete_pairs`), not only those within ``cutoff``
        self.complete = False

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
                   torch.cat(counts).cpu().numpy(), packed.full.pbc.any(dim=1).cpu().numpy(), packed.host_counts,
                   cutoff)

    @classmethod
    def complete_pairs(cls, packed: PackedStructures, max_pairs: int = MAX_PAIRS) -> PackedPairs | None:
        """Every pair of distinct atoms of each structure of ``packed`` (all molecules), in the order of
        :func:`~boltzmatch.models.neighbors.complete_pairs`; ``None`` if a structure is periodic or there are more
        than ``max_pairs``. Made on the host from the atom counts: no positions are read."""
        atom_counts = packed.host_counts
        counts = atom_counts * (atom_counts - 1)
        if bool(packed.full.pbc.any()) or int(counts.sum()) > max_pairs:
            return None
        by_size = {}  # the local pairs of an n-atom molecule, made once per size (QM9: 27 sizes, 130,831 molecules)
        for n in np.unique(atom_counts):
            a, b = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
            by_size[n] = (a[a != b], b[a != b])
        local_i = np.concatenate([by_size[n][0] for n in atom_counts]) if len(atom_counts) else np.zeros(0, int)
        local_j = np.concatenate([by_size[n][1] for n in atom_counts]) if len(atom_counts) else np.zeros(0, int)
        pairs = cls(torch.from_numpy(local_i.astype(np.int32)), torch.from_numpy(local_j.astype(np.int32)), None,
                    counts, np.zeros(len(atom_counts), dtype=bool), atom_counts, float("inf"))
        pairs.complete = True
        return pairs

    @classmethod
    def for_model(cls, packed: PackedStructures, model: torch.nn.Module, complete: bool = False) -> PackedPairs | None:
        """The pairs a training batch of ``model`` brings: those within its cutoff, or with ``complete`` (CUDA graphs
        of the training step) every pair of each molecule where the model masks pairs beyond its cutoff
        (``masks_beyond_cutoff``), the data set is of molecules and that is at most :data:`COMPLETE_LIMIT` times
        as many pairs. ``None`` for a model without a cutoff, or too many pairs: the model searches per batch."""
        cutoff = getattr(model, "cutoff", None)
        if not (isinstance(cutoff, int | float) and cutoff > 0):
            return None
        within = cls.search(packed, float(cutoff))
        if complete and within is not None and getattr(model, "masks_beyond_cutoff", False):
            every = cls.complete_pairs(packed, max_pairs=min(MAX_PAIRS, int(COMPLETE_LIMIT * max(within.n_pairs, 1))))
            if every is not None:
                return every
        return within

    @property
    def n_pairs(self) -> int:
        """How many directed pairs the data set holds."""
        return int(self.host_counts.sum())

    def to(self, device: torch.device | str) -> PackedPairs:
        self.device = torch.device(device)
        if self.unit_shifts is not None:
            self.unit_shifts = self.unit_shifts.to(device)
        return self

    def __call__(self, host: np.ndarray, batch: AtomsBatch) -> PairList:
        """The pairs of ``batch``, made of the structures ``host`` (indices into the data set) in that order: those
        of molecules first, then those of periodic structures, each in batch order (a fresh search's order).
        Computed on the host (the atom counts are there too) and copied to the device in one go."""
        periodic = self.host_periodic[host]
        order = np.concatenate([np.flatnonzero(~periodic), np.flatnonzero(periodic)])  # places in the batch
        chosen = host[order]
        counts = self.host_counts[chosen]
        rows = ranges(self.host_starts[chosen], counts)
        atoms = self.atom_counts[host]
        offset = np.repeat((np.cumsum(atoms) - atoms)[order], counts)
        i, j = self.local_i[rows] + offset, self.local_j[rows] + offset
        half = None
        if periodic.any():
            i, j, rows = to_device(self.device, i, j, rows)
            unit_shifts = self.unit_shifts[rows]
        elif self.complete:  # one direction of each pair for half lists, found here with the rest (no read-back)
            (i, j, half), unit_shifts = to_device(self.device, i, j, np.flatnonzero(i < j)), None
        else:
            (i, j), unit_shifts = to_device(self.device, i, j), None
        pairs = PairList(i=i, j=j, unit_shifts=unit_shifts, cutoff=self.cutoff, positions=batch.positions.detach(),
                         cell=batch.cell.detach(), structure_index=batch.structure_index)
        if self.complete:
            return pairs.mark_complete(half).found_for(batch, exact=False)
        return pairs.found_for(batch, exact=unit_shifts is None)
