"""SchNet (Schütt et al., J. Chem. Phys. 148, 241722 (2018); NeurIPS 2017).

Continuous-filter convolutions on Gaussian-expanded distances with a cosine cutoff, shifted
softplus activations, atomwise energies summed per structure.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel, xavier_init
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

    def forward(self, x, rbf, fcut, i, j):
        """``i``, ``j``: each unordered pair once; the filter depends on the distance only, so one
        filter serves both directions (half the filter-network cost of a directed edge list)."""
        w = self.filter(rbf) * fcut[:, None]
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
        edges = neighbor_list(batch, self.cutoff, half=True)  # one direction of every pair
        i, j, distances = edges.i, edges.j, edges.distances
        x = self.embedding(batch.numbers).to(batch.positions.dtype)
        if self.noise_embedding is not None:
            x = x + self.noise_embedding(batch, x.dtype)
        rbf = self.rbf(distances)
        fcut = cosine_cutoff(distances, self.cutoff)
        for interaction in self.interactions:
            x = x + interaction(x, rbf, fcut, i, j)
        return self.output(x).squeeze(1)
