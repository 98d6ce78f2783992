"""Batches of molecules of different sizes padded to one shape, so that a CUDA graph of the training step replays.

A captured step replays for batches of its shape only (:mod:`.graphed_step`): for QM9's molecules of 3 to 29 atoms
nearly every batch had a shape of its own. As jraph's ``pad_with_graphs`` does, a batch here gets one more
structure that holds padding atoms and pairs, up to totals fixed for the run (:class:`PaddedShape`): so many atoms
of each element (MACE groups atoms by element on the host, so the counts are part of the shape), so many pairs.
The padding atoms lie ``2 × cutoff`` apart, so the pairs between them, taken by models that mask pairs beyond their
cutoff (``masks_beyond_cutoff``), contribute nothing; the losses average over the batch's own structures only
(``AtomsBatch.weight``: 0 for the padding structure; :func:`~boltzmatch.objectives.base.structure_mean`), so a
padded step has the loss and gradients of the unpadded one. The totals are the largest of 512 random batches of
the training set (:func:`fit_padding`); a batch beyond them, and an epoch's shorter last batch, are not padded and
run as before. Validation pads its batches (twice the size) to a shape fitted on the validation structures, and
its error sums count a padded batch's own structures and atoms (training/errors_accumulator.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..data.packed import PackedStructures, to_device
from ..models.neighbors import PairList

#: the quantile of the totals of random training batches (per element, and the pairs) that the padded shape holds:
#: 1, the largest of them. On 2,000 QM9 molecules (docs/gpu.md) it held 99.7 % of other random batches of 8, 32 and
#: 128 for 39 %, 19 % and 8 % more atoms than they have; 0.99 held 95 % for 27 %, 13 % and 6 %. A batch that does
#: not fit runs unreplayed, which at the small batches graphs are for costs more than padding's extra arithmetic
PADDING_QUANTILE = 1.0


@dataclass(frozen=True)
class PaddedShape:
    """The totals a padded batch of ``structures`` structures (plus the padding one) holds: ``atoms`` per element as
    ``(atomic number, count)`` and ``pairs`` directed pairs; ``spacing`` (Å) between padding atoms."""

    structures: int
    atoms: tuple[tuple[int, int], ...]
    pairs: int
    spacing: float

    @property
    def n_atoms(self) -> int:
        return sum(count for _, count in self.atoms)


def fit_padding(packed: PackedStructures, indices: np.ndarray, batch_size: int, cutoff: float,
                quantile: float = PADDING_QUANTILE, samples: int = 512, seed: int = 0) -> PaddedShape | None:
    """The padded shape for batches of ``batch_size`` of the structures ``indices``: per element and for the
    pairs (every pair of each molecule), the ``quantile`` of the totals of ``samples`` random batches, plus two
    atoms of the lightest element so that the padding structure can hold padding pairs. ``None`` where padding
    has nothing to do: fewer structures than a batch, or batches whose shapes do not vary."""
    indices = np.asarray(indices)
    if len(indices) < batch_size or batch_size < 1:
        return None
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(indices, batch_size, replace=False) for _ in range(samples)])
    per_element = packed.host_element_counts[picks].sum(1)  # (samples, elements)
    atoms = packed.host_counts[picks]
    pairs = (atoms * (atoms - 1)).sum(1)
    if np.ptp(per_element, axis=0).max() == 0 and np.ptp(pairs) == 0:
        return None  # one molecule's frames: every batch has one shape already
    targets = np.ceil(np.quantile(per_element, quantile, axis=0, method="higher")).astype(int)
    targets[0] += 2
    return PaddedShape(structures=batch_size, atoms=tuple((z, int(t)) for z, t in zip(packed.elements, targets,
                                                                                        strict=True) if t),
                       pairs=int(np.quantile(pairs, quantile, method="higher")), spacing=2.0 * float(cutoff))


def pad_batch(batch: AtomsBatch, shape: PaddedShape) -> AtomsBatch | None:
    """``batch`` with one more structure of padding atoms and pairs, up to ``shape``; ``None`` if it does not fit
    (another structure count, more atoms of an element or more pairs than ``shape`` holds, or pairs that are not
    the complete pairs of molecules). Computed on the host from the batch's host-side counts, then one copy."""
    pairs = batch.pairs
    counts = dict(batch.element_counts or ())
    if (batch.n_structures != shape.structures or not isinstance(pairs, PairList) or not pairs.complete
            or any(counts.get(z, 0) > target for z, target in shape.atoms) or set(counts) - dict(shape.atoms).keys()
            or len(pairs.i) > shape.pairs):
        return None
    numbers = np.concatenate([np.full(target - counts.get(z, 0), z) for z, target in shape.atoms])
    n_real, n_pad = batch.n_atoms, len(numbers)
    pad_pairs = shape.pairs - len(pairs.i)  # even: both directions of each pair
    if n_pad < 2 and pad_pairs:
        return None
    first, second = n_real, n_real + 1
    i = np.tile([first, second], pad_pairs // 2)
    j = np.tile([second, first], pad_pairs // 2)
    half = len(pairs.i) + np.arange(0, pad_pairs, 2)  # i < j: the first of each two
    device = batch.positions.device
    numbers_t, i_t, j_t, half_t = to_device(device, numbers, i, j, half)
    positions = torch.zeros(n_pad, 3, dtype=batch.positions.dtype, device=device)
    positions[:, 0] = torch.arange(n_pad, dtype=positions.dtype, device=device) * shape.spacing
    padded = replace(
        batch,
        positions=torch.cat([batch.positions, positions]),
        numbers=torch.cat([batch.numbers, numbers_t.to(batch.numbers.dtype)]),
        structure_index=torch.cat([batch.structure_index, torch.full_like(numbers_t, batch.n_structures,
                                                                          dtype=batch.structure_index.dtype)]),
        cell=torch.cat([batch.cell, batch.cell.new_zeros(1, 3, 3)]),
        pbc=torch.cat([batch.pbc, batch.pbc.new_zeros(1, 3)]),
        energy=None if batch.energy is None else torch.cat([batch.energy, batch.energy.new_zeros(1)]),
        forces=None if batch.forces is None else torch.cat([batch.forces, batch.forces.new_zeros(n_pad, 3)]),
        stress=None if batch.stress is None else torch.cat([batch.stress, batch.stress.new_zeros(1, 6)]),
        temperature=None if batch.temperature is None else torch.cat([batch.temperature, batch.temperature[:1]]),
        noise_level=None if batch.noise_level is None else torch.cat([batch.noise_level, batch.noise_level[:1]]),
        element_counts=shape.atoms,
        weight=torch.cat([batch.positions.new_ones(batch.n_structures), batch.positions.new_zeros(1)]),
    )
    padded.pairs = PairList(i=torch.cat([pairs.i, i_t]), j=torch.cat([pairs.j, j_t]), unit_shifts=None,
                            cutoff=pairs.cutoff, positions=padded.positions.detach(), cell=padded.cell.detach(),
                            structure_index=padded.structure_index)
    padded.pairs.mark_complete(torch.cat([pairs.half_index, half_t])).found_for(padded, exact=False)
    return padded
