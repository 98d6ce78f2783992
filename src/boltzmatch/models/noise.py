"""Noise conditioning: an energy model E_θ(x, σ) for score-based diffusion on positions.

A model built with ``noise_levels: [σ_min, σ_max]`` (Å) adds to every atom's initial features an
embedding of log σ (Gaussian basis over [log σ_min, log σ_max], two linear layers), σ being the
batch's ``noise_level`` per structure. Without a noise level (clean frames, MD) the model is
evaluated at σ_min: its small-noise energy, whose forces serve as a force field ("two for one",
Arts et al. 2023). The score stays conservative, s = βF = −β∇E, at every σ.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .radial import ShiftedSoftplus


class NoiseEmbedding(nn.Module):
    """(n_atoms, n_features) features of each structure's log σ."""

    def __init__(self, n_features: int, noise_levels: tuple[float, float], n_basis: int = 16):
        super().__init__()
        low, high = (math.log(float(v)) for v in noise_levels)
        if not high > low:
            raise ValueError(f"noise_levels must be [σ_min, σ_max] with σ_min < σ_max (Å), got {noise_levels}")
        self.sigma_min = float(noise_levels[0])
        self.register_buffer("centres", torch.linspace(low, high, n_basis))
        self.width = (high - low) / max(n_basis - 1, 1)
        self.net = nn.Sequential(nn.Linear(n_basis, n_features), ShiftedSoftplus(), nn.Linear(n_features, n_features))

    def forward(self, batch: AtomsBatch, dtype: torch.dtype) -> torch.Tensor:
        if batch.noise_level is None:
            sigma = torch.full((batch.n_structures,), self.sigma_min, dtype=dtype, device=batch.positions.device)
        else:
            sigma = batch.noise_level.to(dtype)
        basis = torch.exp(-0.5 * ((torch.log(sigma)[:, None] - self.centres.to(dtype)) / self.width) ** 2)
        return self.net(basis)[batch.structure_index]
