"""SchNet (Schütt et al., J. Chem. Phys. 148, 241722 (2018); NeurIPS 2017).

Continuous-filter convolutions on Gaussian-expanded distances with a cosine cutoff, shifted
softplus activations, atomwise energies summed per structure.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel, xavier_init
from .filter_table import DEFAULT_SPACING, FilterTable
from .neighbors import neighbor_list
from .noise import NoiseEmbedding
from .radial import GaussianRBF, ShiftedSoftplus, cosine_cutoff


class SchNetInteraction(nn.Module):
    def __init__(self, n_features: int, n_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.filter = nn.Sequential(nn.Linear(n_rbf, n_features), ShiftedSoftplus(), nn.Linear(n_features, n_features))
        self.in2f = nn.Linear(n_features, n_features, bias=False)
        self.f2out = nn.Sequential(
            nn.Linear(n_features, n_features), ShiftedSoftplus(), nn.Linear(n_features, n_features)
        )

    def filter_weights(self, rbf: torch.Tensor, fcut: torch.Tensor) -> torch.Tensor:
        """(n_pairs, n_features) continuous filter W(r) from the radial basis and the cutoff function."""
        return self.filter(rbf) * fcut[:, None]

    def forward(self, x, w, i, j):
        """``w``: :meth:`filter_weights` of the pairs ``i``, ``j``, each unordered pair once; the filter
        depends on the distance only, so one filter serves both directions (half the filter-network
        cost of a directed edge list)."""
        h = self.in2f(x)
        # index_select, not h[j]: its backward is a scatter-add, not an accumulating index-put
        aggregated = torch.zeros_like(x).index_add(0, i, h.index_select(0, j) * w).index_add(
            0, j, h.index_select(0, i) * w)
        return self.f2out(aggregated)


class SchNet(EnergyModel):
    """SchNet energy model.

    Parameters
    ----------
    cutoff : Å
    n_interactions : number of interaction blocks
    n_features : atom feature size
    n_rbf : Gaussian radial basis size
    max_z : largest atomic number embedded
    noise_levels : [σ_min, σ_max] in Å makes the model noise-conditional (see :mod:`.noise`)
    """

    name = "schnet"
    #: pairs beyond the cutoff contribute exactly nothing (the cutoff function is 0 there, with its slope): the model
    #: takes lists that hold them (``neighbor_list(..., masked=True)``), such as every pair of each molecule
    masks_beyond_cutoff = True
    #: set on the copies :meth:`for_md` makes
    _filter_table: FilterTable | None = None

    def __init__(
        self, cutoff: float = 5.0, n_interactions: int = 3, n_features: int = 64, n_rbf: int = 20, max_z: int = 100,
        elements: list[int] | None = None, noise_levels: list[float] | None = None,
    ):
        super().__init__(max_z=max_z)
        self.cutoff = float(cutoff)
        self.elements = elements
        self.embedding = nn.Embedding(max_z + 1, n_features)
        self.noise_levels = None if noise_levels is None else [float(v) for v in noise_levels]
        self.noise_embedding = None if noise_levels is None else NoiseEmbedding(n_features, noise_levels)
        self.rbf = GaussianRBF(n_rbf, cutoff)
        self.interactions = nn.ModuleList(SchNetInteraction(n_features, n_rbf, cutoff) for _ in range(n_interactions))
        self.output = nn.Sequential(
            nn.Linear(n_features, n_features // 2), ShiftedSoftplus(), nn.Linear(n_features // 2, 1)
        )
        xavier_init(self)

    def atomic_energy(self, batch: AtomsBatch) -> torch.Tensor:
        # one direction of every pair; f_c masks
        edges = neighbor_list(batch, self.cutoff, half=True, masked=self.masks_beyond_cutoff)
        i, j, distances = edges.i, edges.j, edges.distances
        x = self.embedding(batch.numbers).to(batch.positions.dtype)
        if self.noise_embedding is not None:
            x = x + self.noise_embedding(batch, x.dtype)
        if self._filter_table is not None:
            filters = self._filter_table(distances).split(x.shape[1], dim=1)
        else:
            filters = self.filters(distances)
        for interaction, w in zip(self.interactions, filters, strict=True):
            x = x + interaction(x, w, i, j)
        return self.output(x).squeeze(1)

    def filters(self, distances: torch.Tensor) -> list[torch.Tensor]:
        """Each interaction's filter W(r), (n_pairs, n_features), at ``distances`` (Å)."""
        rbf = self.rbf(distances)
        fcut = cosine_cutoff(distances, self.cutoff)
        return [interaction.filter_weights(rbf, fcut) for interaction in self.interactions]

    def for_md(self, spacing: float = DEFAULT_SPACING) -> SchNet:
        """This model with its filters tabulated (:mod:`.filter_table`), for forces with frozen weights.

        A shallow copy: it shares every module and weight with this model, which is left as it was.
        Build it per MD run; it is stale once the weights change, and it gives first derivatives only.
        """
        dtype = self.embedding.weight.dtype
        reference = copy.deepcopy(self).double()  # tabulate the exact float64 function

        def all_filters(distances: torch.Tensor) -> torch.Tensor:
            return torch.cat(reference.filters(distances), dim=1)

        table = FilterTable(all_filters, self.cutoff, spacing=spacing, dtype=dtype, device=self.embedding.weight.device)
        view = copy.copy(self)
        object.__setattr__(view, "_filter_table", table)  # not registered: the original's modules are untouched
        return view
