"""An MLP on invariant per-atom descriptors: atomic energies summed per structure."""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel
from .descriptors import AtomicDescriptors


class DescriptorMLP(EnergyModel):
    """E = Σ_i MLP([ρ_i, onehot(Z_i)]) scaled, plus per-element reference energies (eV).

    Parameters
    ----------
    elements : atomic numbers covered
    cutoff : Å
    n_rbf : radial functions per neighbour element
    angular : add three-body descriptors
    hidden : widths of the hidden layers (depth = its length)
    """

    name = "mlp"

    def __init__(
        self, elements: list[int], cutoff: float = 5.0, n_rbf: int = 16, angular: bool = True,
        hidden: tuple[int, ...] = (64, 64),
    ):
        super().__init__()
        self.cutoff = float(cutoff)
        self.descriptors = AtomicDescriptors(elements, cutoff=cutoff, n_rbf=n_rbf, angular=angular)
        width = self.descriptors.size + self.descriptors.n_elements
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.SiLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def atomic_energy(self, batch: AtomsBatch) -> torch.Tensor:
        rho = self.descriptors(batch)
        species = self.descriptors.element_index(batch.numbers)
        onehot = nn.functional.one_hot(species, self.descriptors.n_elements).to(rho.dtype)
        return self.net(torch.cat([rho, onehot], dim=1)).squeeze(1)
