"""Forces for MD: an ``EnergyModel`` evaluated on every active replica in one call per step."""

from __future__ import annotations

import time
import warnings

import torch

from ..data.atoms_batch import AtomsBatch
from ..models.base import energy_forces_and_stress, model_dtype
from ..models.filter_table import DEFAULT_SPACING
from ..models.neighbors import complete_pairs, find_pairs
from ..models.packed_pairs import COMPLETE_LIMIT
from ..utils.device import capture_cuda_graph, graph_failure

#: Å beyond the model's cutoff within which MD keeps candidate pairs (see :class:`ModelForces`)
NEIGHBOR_SKIN = 1.0


class ModelForces:
    """Energy (eV) and forces (eV/Å) of the active replicas from an ``EnergyModel``, one call per step.

    Positions stay float64 in the integrator; the model sees its own dtype. Parameters are frozen,
    so the backward pass computes position gradients only. For a model with a ``cutoff`` (Å), the
    candidate pairs are found with ``cutoff + skin`` and handed to the model on the batch; they are
    searched again only once an atom has moved more than ``skin / 2`` (Å) since the last search
    (the edges the model sees are exactly those of a fresh search). Where a search finds every pair of every
    molecule (small molecules: ethanol's 72 are all within 6 Å) with a skin, the list cannot grow: it is kept for good,
    with no skin check, and models that mask pairs beyond their cutoff take it whole, so a step reads nothing
    back from a GPU. ``model_seconds`` and ``search_seconds`` accumulate the wall time spent in the model's
    forward and backward and in neighbour searches, so a run can state the share of a step spent outside the
    model.
    ``compile_forces`` evaluates the model under ``torch.compile`` (off by default: on the CPU it ran at 0.9×).

    ``cuda_graphs`` replays the force call (the model's forward and the backward to the positions) as a CUDA
    graph, captured at the third call for the replicas of the moment and again after replicas stop. A graph
    replays fixed kernels, so nothing in the call may be searched or read back: molecules get every pair of their
    atoms as candidates once (:func:`~boltzmatch.models.neighbors.complete_pairs`), which the models that mask
    pairs beyond their cutoff (SchNet, PaiNN, MACE) take whole. Off with a warning on the CPU, with
    ``compile_forces``, for periodic structures and where every pair would be more than
    :data:`~boltzmatch.models.packed_pairs.COMPLETE_LIMIT` times the pairs within the cutoff (a molecule much
    larger than the cutoff); a capture that fails (a model that searches or reads back) warns and the run goes on
    without graphs.
    """

    #: eager calls for each set of replicas before its capture (lazy set-ups, MACE's TorchScript profiling runs)
    GRAPH_WARMUP = 2

    def __init__(self, model: torch.nn.Module, numbers: torch.Tensor, structure_index: torch.Tensor,
                 cell: torch.Tensor, pbc: torch.Tensor, *, skin: float = NEIGHBOR_SKIN, exact_filters: bool = False,
                 compile_forces: bool = False, cuda_graphs: bool = False):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        # a model that can tabulate its distance-only networks (SchNet's filters) evaluates them from the
        # table: forces within 1e-5 eV/Å of the exact model's, 1.2x the steps per second (models/filter_table.py)
        tabulate = getattr(model, "for_md", None)
        self.evaluate = model if exact_filters or tabulate is None else tabulate()
        self.filters = "exact" if self.evaluate is model else f"tabulated ({DEFAULT_SPACING} Å spacing)"
        self.compiled = bool(compile_forces)
        if self.compiled:  # one graph for every replica count and pair count (dynamic shapes)
            self.evaluate = torch.compile(self.evaluate, dynamic=True)
        self.dtype = model_dtype(model)
        tensors = list(model.parameters()) + list(model.buffers())
        self.device = tensors[0].device if tensors else torch.device("cpu")
        cutoff = getattr(model, "cutoff", None)
        self.cutoff = float(cutoff) if isinstance(cutoff, int | float) and cutoff > 0 else None
        self.skin = float(skin)
        self.model_seconds = self.search_seconds = 0.0
        self.searches = self.replays = 0
        self.graphs = cuda_graphs and self._graphs_apply(pbc)
        self.capture = True  # False: the graph path's static copies run eagerly (how the CPU tests check it)
        self.set_system(numbers, structure_index, cell, pbc)

    def _graphs_apply(self, pbc: torch.Tensor) -> bool:
        reason = None
        if self.compiled:
            reason = "--compile already chooses how the model's kernels run"
        elif self.cutoff is not None and bool(pbc.any()):
            reason = "periodic structures search their neighbours as atoms move"
        elif self.device.type != "cuda":
            reason = f"the model's device is {self.device.type}"
        if reason is not None:
            warnings.warn(f"--cuda-graphs ignored: {reason}", stacklevel=3)
        return reason is None

    def set_system(self, numbers, structure_index, cell, pbc) -> None:
        self.numbers = numbers.to(self.device)
        self.structure_index = structure_index.to(self.device)
        self.cell = cell.to(self.device, self.dtype)
        self.pbc = pbc.to(self.device)
        self.pairs = None  # replicas changed: search again
        counts = torch.bincount(self.structure_index, minlength=len(self.cell))
        self._all_pairs = int((counts * (counts - 1)).sum())  # every pair of distinct atoms in each structure
        self._graph = self._static = None  # and capture again
        self._calls = 0

    def __call__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graphs:
            return self._graphed(positions)
        batch = self._batch(positions)
        pos = batch.positions
        start = time.perf_counter()
        with torch.enable_grad():
            batch.positions = pos.requires_grad_(True)
            energy = self.evaluate(batch)
            (grad,) = torch.autograd.grad(energy.sum(), batch.positions)
        self.model_seconds += time.perf_counter() - start
        return energy.detach().to(positions), (-grad).to(positions)

    def with_stress(self, positions: torch.Tensor, cell: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy (eV), forces (eV/Å) and stress (n_structures, 3, 3; eV/Å³) of the replicas in ``cell`` (Å, one
        per replica, as a barostat leaves them). The candidate pairs stay valid while the cells are the search's
        scaled alike in every direction (:meth:`~boltzmatch.models.neighbors.PairList.covers`)."""
        self.cell = cell.detach().to(self.device, self.dtype)
        batch = self._batch(positions)
        start = time.perf_counter()
        with torch.enable_grad():
            energy, forces, stress = energy_forces_and_stress(self.evaluate, batch)
        self.model_seconds += time.perf_counter() - start
        return energy.detach().to(positions), forces.detach().to(positions), stress.detach().to(positions)

    def _batch(self, positions: torch.Tensor) -> AtomsBatch:
        """The replicas at ``positions`` (detached, the model's dtype and device) with candidate pairs that cover
        them: the last ones, or a new search (cutoff + skin)."""
        batch = AtomsBatch(positions=positions.detach().to(self.device, self.dtype), numbers=self.numbers,
                           structure_index=self.structure_index, cell=self.cell, pbc=self.pbc, pairs=self.pairs)
        self._search_if_needed(batch)
        return batch

    def _search_if_needed(self, batch: AtomsBatch) -> None:
        """Find the candidate pairs again (cutoff + skin) unless the last ones cover ``batch``; puts them on it."""
        if self.cutoff is not None and (self.pairs is None or not self.pairs.covers(batch, self.cutoff)):
            start = time.perf_counter()
            self.pairs = batch.pairs = find_pairs(batch, self.cutoff + self.skin)
            if self.skin > 0 and self.pairs.exact and len(self.pairs.i) == self._all_pairs:  # every pair found
                self.pairs.mark_complete()  # (skin 0 asks for a search every step: the reference to compare with)
            self.search_seconds += time.perf_counter() - start
            self.searches += 1

    def _evaluate(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy (eV) and forces (eV/Å) at ``positions``, a leaf that requires grad, with the pairs as they are."""
        batch = AtomsBatch(positions=positions, numbers=self.numbers, structure_index=self.structure_index,
                           cell=self.cell, pbc=self.pbc, pairs=self.pairs)
        with torch.enable_grad():
            energy = self.evaluate(batch)
            (grad,) = torch.autograd.grad(energy.sum(), positions)
        return energy.detach(), -grad

    def _graphed(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The force call on static positions: eager for the first ``GRAPH_WARMUP`` calls of these replicas, then
        captured and replayed. The outputs are copied out: the next replay overwrites the graph's."""
        if self._static is None:
            static = positions.detach().to(self.device, self.dtype).clone()
            if self.cutoff is not None:
                batch = AtomsBatch(positions=static, numbers=self.numbers, structure_index=self.structure_index,
                                   cell=self.cell, pbc=self.pbc)
                within = len(find_pairs(batch, self.cutoff).i)
                if self._all_pairs > COMPLETE_LIMIT * max(within, 1):  # a large molecule: all pairs swamp the call
                    warnings.warn(f"CUDA graphs off for this run: a graph computes every pair of each molecule, "
                                  f"{self._all_pairs}, {self._all_pairs / max(within, 1):.1f}x the {within} within "
                                  f"the cutoff (at most {COMPLETE_LIMIT:g}x)", stacklevel=4)
                    self.graphs = False
                    return self(positions)
                self.pairs = complete_pairs(batch)
            self._static = static.requires_grad_(True)
        with torch.no_grad():
            self._static.copy_(positions)
        self._calls += 1
        start = time.perf_counter()
        if self._calls <= self.GRAPH_WARMUP or not self.capture:
            energy, forces = self._evaluate(self._static)
        else:
            if self._graph is None:
                try:
                    self._graph = capture_cuda_graph(lambda: self._evaluate(self._static), self.device)
                except RuntimeError as error:
                    warnings.warn(f"CUDA graphs off for this run: capturing the MD force call failed "
                                  f"({graph_failure(error)})", stacklevel=4)
                    self.graphs, self.pairs = False, None
                    return self(positions)
            graph, (energy, forces) = self._graph
            graph.replay()
            self.replays += 1
        self.model_seconds += time.perf_counter() - start
        return energy.to(positions, copy=True), forces.to(positions, copy=True)
