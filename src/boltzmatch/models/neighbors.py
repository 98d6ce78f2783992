"""Neighbour lists: all pairs within the cutoff, for molecules and periodic cells.

Molecules (no periodic direction) use all pairs inside each structure, found in torch; periodic
structures use vesin's cell list (no hand-written periodic code). The list is built from
detached positions; distances are then recomputed from ``positions`` so they stay
differentiable, as are the periodic shifts ``S @ cell``. MD keeps a :class:`PairList` found with
a skin on its batches, so the search runs only when an atom has moved more than half the skin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..utils.device import nonzero_static_without_sync


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
        return (self.i < self.j) | ((self.i == self.j) & _positive(self.vectors.detach()))


def _molecule_pairs(batch: AtomsBatch, sizes: torch.Tensor, n_candidates: int, cutoff: float | None):
    """Pairs within each non-periodic structure: all ``n_candidates`` pairs of its atoms (``sizes``: per atom,
    the atoms of its structure, 0 in periodic ones), then a distance mask: one read-back from a GPU (the count).
    ``cutoff=None``: no distance mask, every pair of distinct atoms.

    Relies on the AtomsBatch layout: the atoms of a structure are contiguous and in order.
    """
    index = batch.structure_index
    device = index.device
    counts = batch.atoms_per_structure
    offsets = torch.cumsum(counts, 0) - counts
    i = torch.repeat_interleave(torch.arange(batch.n_atoms, device=device), sizes, output_size=n_candidates)
    within = torch.arange(n_candidates, device=device) - torch.repeat_interleave(
        torch.cumsum(sizes, 0) - sizes, sizes, output_size=n_candidates)
    j = offsets[index[i]] + within
    keep = i != j
    if cutoff is not None:
        pos = batch.positions.detach()
        keep &= (pos[j] - pos[i]).norm(dim=1) < cutoff
    kept = keep.nonzero().squeeze(1)
    return i.index_select(0, kept), j.index_select(0, kept)


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
        order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))  # one order, whatever the cutoff
        all_i.append(atoms[i[order]])
        all_j.append(atoms[j[order]])
        all_s.append(shifts[order])
    device = batch.positions.device
    return (
        torch.as_tensor(np.concatenate(all_i), dtype=torch.long, device=device),
        torch.as_tensor(np.concatenate(all_j), dtype=torch.long, device=device),
        torch.as_tensor(np.concatenate(all_s), dtype=batch.positions.dtype, device=device),
    )


class _Answer(NamedTuple):
    """A positive answer of :meth:`PairList.covers`: for which tensors (:func:`_covered_key`) and cutoff (Å), and,
    when it checked positions, the candidates within that cutoff (mask, count, vectors in Å)."""

    key: tuple
    cutoff: float
    keep: torch.Tensor | None = None
    count: int | None = None
    vectors: torch.Tensor | None = None


@dataclass
class PairList:
    """Candidate pairs ``i -> j`` (+ periodic image counts) within ``cutoff`` (Å) of ``positions``.

    Found once with the model's cutoff plus a skin and reused while no atom has moved more than
    half the skin from ``positions`` (the Verlet criterion: then every pair now within
    ``cutoff − skin`` was a candidate). Detached; the order is that of a fresh search, so the
    edges taken from it are the same, in the same order, as those of a fresh search.
    """

    i: torch.Tensor
    j: torch.Tensor
    unit_shifts: torch.Tensor | None  # (n_pairs, 3) integer image counts as floats; None: no periodic structure
    cutoff: float
    positions: torch.Tensor  # (n_atoms, 3) Å, where the search ran
    cell: torch.Tensor
    structure_index: torch.Tensor

    #: the candidates are exactly the pairs within ``cutoff`` at ``positions``, and no structure is periodic: a
    #: model at this cutoff keeps them all, and one direction of each is ``i < j`` (half of them, no read-back)
    exact: bool = field(default=False, init=False, repr=False, compare=False)
    #: the candidates are every pair of distinct atoms of each molecule, whatever their distance
    #: (:func:`complete_pairs`): they cover any cutoff at any positions of these atoms, and a model that masks
    #: pairs beyond its cutoff (``neighbor_list(..., masked=True)``) takes them all, with no search or read-back
    complete: bool = field(default=False, init=False, repr=False, compare=False)
    #: complete pairs only: the indices of one direction of each pair (``i < j``), for half lists
    half_index: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)
    #: the last positive answer (:class:`_Answer`): an MD step asks twice (the force call, then the model's
    #: neighbour list), and the second use of the pairs needs the count the first one read back
    _covered: _Answer | None = field(default=None, init=False, repr=False, compare=False)

    def covers(self, batch: AtomsBatch, cutoff: float) -> bool:
        """Whether every pair of ``batch`` within ``cutoff`` (Å) is among the candidates. One read-back from a
        GPU: the largest move since the search, together with the count of candidates within ``cutoff`` that
        :func:`neighbor_list` then takes (:meth:`within`)."""
        if self.complete:  # any positions of the same atoms (the same index tensor: no read-back)
            return batch.structure_index is self.structure_index or (
                batch.structure_index.shape == self.structure_index.shape
                and torch.equal(batch.structure_index, self.structure_index))
        last = self._covered
        if last is not None and _same_tensors(last.key, _covered_key(batch)) and last.cutoff >= cutoff:
            return True  # the same position, index and cell tensors, unchanged since
        if cutoff >= self.cutoff:
            return False  # no skin to spare: only the very positions of the search are covered (no read-back)
        positions = batch.positions.detach()
        if (positions.shape != self.positions.shape
                or not (batch.structure_index is self.structure_index
                        or torch.equal(batch.structure_index, self.structure_index))):
            return False
        reach = cutoff
        if self.unit_shifts is not None and not torch.equal(batch.cell.detach(), self.cell):
            # a barostat's cells: the search's with x, y and z scaled by s per structure, so every vector, images'
            # too, is its value in the search's frame scaled alike, and no distance shrinks by more than the
            # smallest s: the Verlet test runs in the search's frame, for the cutoff over that s
            scale = axis_scales(batch.cell.detach(), self.cell.to(batch.cell))
            if scale is None:
                return False
            positions = positions / scale[batch.structure_index]
            reach = cutoff / float(scale.min()) * (1.0 + _scale_tolerance(batch.cell.dtype))  # the cells' rounding
        moved = torch.linalg.vector_norm(positions - self.positions.to(positions), dim=1).max()
        vectors = self.vectors(batch.positions.detach(), batch.cell)
        keep = torch.linalg.vector_norm(vectors, dim=1) < cutoff
        largest, count = torch.stack([moved.double(), keep.sum().double()]).tolist()
        if 2.0 * largest > self.cutoff - reach:
            return False
        self._covered = _Answer(_covered_key(batch), cutoff, keep, int(count), vectors)
        return True

    def mark_complete(self, half_index: torch.Tensor | None = None) -> PairList:
        """Say that the candidates are every pair of distinct atoms of each molecule (see :attr:`complete`); the
        caller knows (:func:`complete_pairs`, a search that kept them all, or the data set's complete pairs, which
        bring ``half_index``). Without ``half_index``, one read-back: the half count."""
        self.complete = True
        self.half_index = (self.i < self.j).nonzero().squeeze(1) if half_index is None else half_index
        return self

    def found_for(self, batch: AtomsBatch, *, exact: bool) -> PairList:
        """Mark the candidates as found at ``batch``'s very tensors, ``exact`` (see :attr:`exact`) or not."""
        self._covered = _Answer(_covered_key(batch), self.cutoff)
        self.exact = exact
        return self

    def vectors(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The candidates' vectors ``x_j − x_i + S·cell`` (Å) at ``positions``, detached."""
        with torch.no_grad():
            plain = positions.detach()
            v = plain[self.j] - plain[self.i]
            if self.unit_shifts is not None:
                cells = cell.detach()[self.structure_index[self.i]]
                v = v + torch.einsum("ek,ekl->el", self.unit_shifts.to(v.dtype), cells)
        return v

    def within(self, batch: AtomsBatch, cutoff: float) -> tuple | None:
        """(mask, count, vectors) of the candidates within ``cutoff`` that :meth:`covers` found for these very
        tensors, or ``None``."""
        last = self._covered
        if (last is not None and last.keep is not None and last.cutoff == cutoff
                and _same_tensors(last.key, _covered_key(batch))):
            return last.keep, last.count, last.vectors
        return None


def _covered_key(batch: AtomsBatch) -> tuple:
    """The tensors that decide :meth:`PairList.covers`, each with its version (in-place changes bump it)."""
    return tuple((t, t._version) for t in (batch.positions, batch.structure_index, batch.cell))


def _same_tensors(a: tuple, b: tuple) -> bool:
    """Whether two :func:`_covered_key` keys name the same values: the same tensors, or views of the same memory
    with the same layout (``detach()``, which a force evaluation makes of the positions, shares the memory and
    the version counter), at the same versions. The key holds its tensors, so their memory cannot be reused."""
    return all(u == v and (x is y or _same_view(x, y)) for (x, u), (y, v) in zip(a, b, strict=True))


def _same_view(x: torch.Tensor, y: torch.Tensor) -> bool:
    return (x.data_ptr() == y.data_ptr() and x.dtype == y.dtype and x.device == y.device and x.shape == y.shape
            and x.stride() == y.stride())


def find_pairs(batch: AtomsBatch, cutoff: float) -> PairList:
    """All directed pairs with distance < ``cutoff`` (Å), detached: molecules by all pairs in torch,
    periodic structures by vesin's cell list. Molecules read back from a GPU twice: the candidate count
    and whether any structure is periodic (one transfer), then the count within the cutoff."""
    periodic = batch.pbc.any(dim=1)
    index = batch.structure_index
    sizes = batch.atoms_per_structure[index] * (~periodic)[index]  # periodic structures get no pairs here
    n_candidates, n_periodic = torch.stack([sizes.sum(), periodic.sum()]).tolist()
    i, j = _molecule_pairs(batch, sizes, n_candidates, cutoff)
    unit_shifts = None
    if n_periodic:
        pi, pj, shifts = _periodic_pairs(batch, torch.nonzero(periodic).squeeze(1).tolist(), cutoff)
        unit_shifts = torch.cat([torch.zeros(len(i), 3, dtype=shifts.dtype, device=shifts.device), shifts])
        i, j = torch.cat([i, pi]), torch.cat([j, pj])
    pairs = PairList(i=i, j=j, unit_shifts=unit_shifts, cutoff=float(cutoff),
                     positions=batch.positions.detach().clone(), cell=batch.cell.detach().clone(),
                     structure_index=batch.structure_index)
    return pairs.found_for(batch, exact=not n_periodic)


def complete_pairs(batch: AtomsBatch) -> PairList:
    """Every directed pair of distinct atoms inside each structure of ``batch``, whatever their distance: MD's
    candidates for molecules when nothing may be searched or read back during a step (a CUDA graph of the force
    call). One read-back here, the pair count. Periodic structures have no such list (ValueError)."""
    if bool(batch.pbc.any()):
        raise ValueError("complete pairs are for molecules: a structure of the batch is periodic")
    sizes = batch.atoms_per_structure[batch.structure_index]
    i, j = _molecule_pairs(batch, sizes, int(sizes.sum()), None)
    pairs = PairList(i=i, j=j, unit_shifts=None, cutoff=float("inf"), positions=batch.positions.detach().clone(),
                     cell=batch.cell.detach().clone(), structure_index=batch.structure_index)
    return pairs.mark_complete().found_for(batch, exact=False)


def _positive(v: torch.Tensor) -> torch.Tensor:
    """Lexicographically positive vectors (first non-zero component > 0)."""
    return (v[:, 0] > 0) | ((v[:, 0] == 0) & ((v[:, 1] > 0) | ((v[:, 1] == 0) & (v[:, 2] > 0))))


def _reused(pairs: PairList, batch: AtomsBatch, cutoff: float, half: bool) -> torch.Tensor | None:
    """The indices of ``pairs``' candidates within ``cutoff`` (one direction of each with ``half``), ``None`` for
    all of them. The count comes from :meth:`PairList.covers`, which read it back with its skin check; without
    it (a cutoff it did not check), one read-back here."""
    within = pairs.within(batch, cutoff)
    if within is None:
        v = pairs.vectors(batch.positions, batch.cell)
        keep, count = torch.linalg.vector_norm(v, dim=1) < cutoff, None
    else:
        keep, count, v = within
    if half:
        # the candidates are both directions of every pair, and the distance is the same both ways (the vectors
        # are exact negatives): one direction is exactly half of them
        keep = keep & ((pairs.i < pairs.j) | ((pairs.i == pairs.j) & _positive(v)))
        count = None if count is None else count // 2
    if count is not None and nonzero_static_without_sync(keep.device):
        kept = torch.nonzero_static(keep, size=count).squeeze(1)
    else:
        kept = keep.nonzero().squeeze(1)  # one read-back from a GPU (the count), not one per gathered array
    return kept if len(kept) < len(keep) else None


def _scale_tolerance(dtype: torch.dtype) -> float:
    """How far from exact a scaled cell in ``dtype`` may be (relative): a barostat's float64 cells cast to a
    float32 model's dtype differ from the search's cell times r by its rounding."""
    return 16.0 * torch.finfo(dtype).eps


def axis_scales(cell: torch.Tensor, reference: torch.Tensor) -> torch.Tensor | None:
    """(n_structures, 3) factors s with ``cell[:, :, α] = s_α · reference[:, :, α]`` per structure (cells
    (n, 3, 3) Å, rows the vectors): the reference with every position's x, y and z scaled by s (a barostat's cells,
    :mod:`~boltzmatch.simulate.barostat`). None where some cell is not (within the rounding of their dtype)."""
    cell64, reference64 = cell.double(), reference.double()
    norms = (reference64 * reference64).sum(1)
    scales = torch.where(norms > 0, (cell64 * reference64).sum(1) / norms.clamp(min=1e-300), 1.0)
    tolerance = _scale_tolerance(cell.dtype)
    if not bool(torch.isfinite(scales).all()) or not bool((scales > 0).all()) or not torch.allclose(
            cell64, reference64 * scales[:, None, :], rtol=tolerance, atol=tolerance * float(cell64.abs().max())):
        return None
    return scales.to(cell.dtype)


def neighbor_list(batch: AtomsBatch, cutoff: float, *, half: bool = False, masked: bool = False) -> Edges:
    """All directed pairs with distance < ``cutoff`` (Å) in ``batch``; ``half=True`` keeps one
    direction of each (the rule of :meth:`Edges.half`). ``masked=True``: the caller multiplies every pair's
    contribution by a cutoff function that is zero, with its derivative, at distances ≥ ``cutoff``; it may then be
    given pairs beyond the cutoff, and takes a :func:`complete_pairs` list whole (no mask, no read-back).

    Reuses ``batch.pairs`` when they cover ``cutoff`` at these positions (:meth:`PairList.covers`): MD's
    candidates found with a skin, or the data set's own pairs that a training batch brings.
    Pairs are chosen on detached positions; the differentiable vectors are then gathered with
    ``index_select`` (whose backward is a scatter-add, several times faster on CPU than the
    accumulating index-put that advanced indexing's backward runs).
    """
    pairs = batch.pairs
    if isinstance(pairs, PairList) and pairs.covers(batch, cutoff):
        # pairs of molecules searched at these positions and this cutoff (the data set's, packed): every
        # candidate is kept
        exact = (pairs.exact and pairs.cutoff == cutoff) or (pairs.complete and masked)
    else:
        pairs = find_pairs(batch, cutoff)
        exact = pairs.exact
    positions = batch.positions
    i, j, unit_shifts = pairs.i, pairs.j, pairs.unit_shifts
    cell = batch.cell[batch.structure_index[i]] if unit_shifts is not None else None
    if exact and half and pairs.half_index is not None:
        kept = pairs.half_index  # complete pairs: one direction of each, found with them
    elif exact:
        # the distance mask the search applied is symmetric in i and j (no i == j), so i < j keeps exactly half
        # of the pairs: a count known on the host, and no read-back from a GPU
        half_mask = i < j
        kept = None if not half else (torch.nonzero_static(half_mask, size=len(i) // 2).squeeze(1)
                                      if nonzero_static_without_sync(i.device) else half_mask.nonzero().squeeze(1))
    else:
        kept = _reused(pairs, batch, cutoff, half)
    if kept is not None:
        i, j = i.index_select(0, kept), j.index_select(0, kept)
        if unit_shifts is not None:
            unit_shifts, cell = unit_shifts.index_select(0, kept), cell.index_select(0, kept)
    vectors = positions.index_select(0, j) - positions.index_select(0, i)
    if unit_shifts is None:
        offsets = torch.zeros_like(vectors)
        unit_shifts = torch.zeros_like(vectors)
    else:
        unit_shifts = unit_shifts.to(vectors.dtype)
        offsets = torch.einsum("ek,ekl->el", unit_shifts, cell)
        vectors = vectors + offsets
    distances = torch.linalg.vector_norm(vectors, dim=1)
    return Edges(i=i, j=j, vectors=vectors, distances=distances, shifts=offsets, unit_shifts=unit_shifts)
