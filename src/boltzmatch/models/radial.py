"""Radial basis functions and smooth cutoffs (distances in Å).

All are smooth (C²) so that energies, forces and the Laplacian used by score matching are
continuous as atoms cross the cutoff.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """½(cos(πr/r_c) + 1) inside the cutoff, 0 outside; its first derivative vanishes at r_c."""
    value = 0.5 * (torch.cos(math.pi * distances / cutoff) + 1.0)
    return torch.where(distances < cutoff, value, 0.0)


def cosine_cutoff_derivative(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """d/dr of :func:`cosine_cutoff`, 1/Å."""
    value = -0.5 * math.pi / cutoff * torch.sin(math.pi * distances / cutoff)
    return torch.where(distances < cutoff, value, 0.0)


def polynomial_cutoff(distances: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """The DimeNet envelope of order ``p``: value, first and second derivative vanish at r_c."""
    x = distances / cutoff
    value = (
        1.0
        - (p + 1.0) * (p + 2.0) / 2.0 * x**p
        + p * (p + 2.0) * x ** (p + 1)
        - p * (p + 1.0) / 2.0 * x ** (p + 2)
    )
    return torch.where(x < 1.0, value, 0.0)


class GaussianRBF(nn.Module):
    """``n_rbf`` Gaussians centred evenly on [0, cutoff] with width equal to the spacing."""

    def __init__(self, n_rbf: int, cutoff: float, start: float = 0.0):
        super().__init__()
        centers = torch.linspace(start, cutoff, n_rbf)
        width = (centers[1] - centers[0]) if n_rbf > 1 else torch.tensor(cutoff)
        self.register_buffer("centers", centers)
        self.register_buffer("coefficient", -0.5 / width**2)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.coefficient * (distances[..., None] - self.centers) ** 2)

    def derivative(self, distances: torch.Tensor) -> torch.Tensor:
        """(..., n_rbf) d/dr of each Gaussian, 1/Å."""
        shifted = distances[..., None] - self.centers
        return 2.0 * self.coefficient * shifted * torch.exp(self.coefficient * shifted**2)


class BesselRBF(nn.Module):
    """sin(nπr/r_c)/r (Klicpera et al.), as PaiNN uses."""

    def __init__(self, n_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, n_rbf + 1) * math.pi / cutoff)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        d = distances[:, None]
        return torch.sin(self.frequencies * d) / d.clamp_min(1e-9)


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """softplus(x) − ln 2, SchNet's activation (smooth, zero at 0)."""
    return nn.functional.softplus(x) - math.log(2.0)


class ShiftedSoftplus(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)
