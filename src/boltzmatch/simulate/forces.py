"""Forces for MD: an ``EnergyModel`` evaluated on every active replica in one call per step."""

from __future__ import annotations

import time

import torch

from ..data.atoms_batch import AtomsBatch
from ..models.base import model_dtype
from ..models.filter_table import DEFAULT_SPACING
from ..models.neighbors import find_pairs

#: Å beyond the model's cutoff within which MD keeps candidate pairs (see :class:`ModelForces`)
NEIGHBOR_SKIN = 1.0


class ModelForces:
    """Energy (eV) and forces (eV/Å) of the active replicas from an ``EnergyModel``, one call per step.

    Positions stay float64 in the integrator; the model sees its own dtype. Parameters are frozen,
    so the backward pass computes position gradients only. For a model with a ``cutoff`` (Å), the
    candidate pairs are found with ``cutoff + skin`` and handed to the model on the batch; they are
    searched again only once an atom has moved more than ``skin / 2`` (Å) since the last search
    (the edges the model sees are exactly those of a fresh search). ``model_seconds`` and
    ``search_seconds`` accumulate the wall time spent in the model's forward and backward and in
    neighbour searches, so a run can state the share of a step spent outside the model.
    ``compile_forces`` evaluates the model under ``torch.compile`` (off by default: on the CPU it ran at 0.9×).
    """

    def __init__(self, model: torch.nn.Module, numbers: torch.Tensor, structure_index: torch.Tensor,
                 cell: torch.Tensor, pbc: torch.Tensor, *, skin: float = NEIGHBOR_SKIN, exact_filters: bool = False,
                 compile_forces: bool = False):
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
        self.searches = 0
        self.set_system(numbers, structure_index, cell, pbc)

    def set_system(self, numbers, structure_index, cell, pbc) -> None:
        self.numbers = numbers.to(self.device)
        self.structure_index = structure_index.to(self.device)
        self.cell = cell.to(self.device, self.dtype)
        self.pbc = pbc.to(self.device)
        self.pairs = None  # replicas changed: search again

    def __call__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = positions.detach().to(self.device, self.dtype)
        batch = AtomsBatch(positions=pos, numbers=self.numbers, structure_index=self.structure_index,
                                 cell=self.cell, pbc=self.pbc, pairs=self.pairs)
        if self.cutoff is not None and (self.pairs is None or not self.pairs.covers(batch, self.cutoff)):
            start = time.perf_counter()
            self.pairs = batch.pairs = find_pairs(batch, self.cutoff + self.skin)
            self.search_seconds += time.perf_counter() - start
            self.searches += 1
        start = time.perf_counter()
        with torch.enable_grad():
            batch.positions = pos.requires_grad_(True)
            energy = self.evaluate(batch)
            (grad,) = torch.autograd.grad(energy.sum(), batch.positions)
        self.model_seconds += time.perf_counter() - start
        return energy.detach().to(positions), (-grad).to(positions)
