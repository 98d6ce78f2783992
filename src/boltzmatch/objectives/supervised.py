"""Supervised energy and force losses.

The energy term is the mean squared error of the energy *per atom* (eV²/atom²), so that
molecules of different sizes weigh alike; the force term is the mean squared error over
force components (eV²/Å²). ``loss = energy_weight · L_E + force_weight · L_F``.
"""

from __future__ import annotations

import torch

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces
from .base import atom_mean, structure_mean

LOSSES = ("energy", "forces", "energy-forces")
#: per-atom energy errors a loss surface can be drawn for: MSE (the training loss), MAE, Huber (δ 0.01 eV/atom)
ENERGY_LOSSES = ("energy", "energy-mae", "energy-huber")


def per_atom_energy_loss(energy: torch.Tensor, batch: AtomsBatch, kind: str = "energy") -> torch.Tensor:
    """Mean over structures of the per-atom energy error (eV/atom) of ``energy`` (n_structures,) eV:
    squared (``energy``, eV²/atom²), absolute (``energy-mae``) or Huber (``energy-huber``). A tensor
    throughout (no ``.item()``), so it runs under ``torch.func.vmap``."""
    per_atom = (energy - batch.energy) / batch.atoms_per_structure.to(energy.dtype)
    if kind == "energy":
        return structure_mean(per_atom**2, batch)
    if kind == "energy-mae":
        return structure_mean(per_atom.abs(), batch)
    if kind == "energy-huber":
        huber = torch.nn.functional.huber_loss(per_atom, torch.zeros_like(per_atom), delta=0.01, reduction="none")
        return structure_mean(huber, batch)
    raise BoltzmatchError(f"unknown energy loss {kind!r}; expected one of {', '.join(ENERGY_LOSSES)}")


class SupervisedLoss:
    """Energy, force or energy+force matching."""

    def __init__(self, loss: str = "energy-forces", energy_weight: float = 1.0, force_weight: float = 100.0):
        if loss not in LOSSES:
            raise BoltzmatchError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        self.loss = loss
        self.energy_weight = energy_weight if loss != "forces" else 0.0
        self.force_weight = force_weight if loss != "energy" else 0.0
        self.needs = tuple(n for n, w in (("energy", self.energy_weight), ("forces", self.force_weight)) if w)

    #: the loss is a function of the model's energy and forces at the batch's positions (see :meth:`from_predictions`)
    predictive = True

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        use_forces = self.force_weight > 0
        energy, forces = energy_and_forces(model, batch, create_graph=use_forces, compute_forces=use_forces)
        return self.from_predictions(batch, energy, forces)

    def from_predictions(self, batch: AtomsBatch, energy: torch.Tensor,
                         forces: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss and metrics of a model's ``energy`` (n_structures,) eV and ``forces`` (n_atoms, 3) eV/Å
        on ``batch`` (``forces`` may be ``None`` when the force weight is 0)."""
        loss = energy.new_zeros(())
        metrics: dict[str, torch.Tensor] = {}
        if self.energy_weight:
            energy_loss = per_atom_energy_loss(energy, batch)
            loss = loss + self.energy_weight * energy_loss
            metrics["energy_loss"] = energy_loss.detach()
        if self.force_weight:
            force_loss = atom_mean((forces - batch.forces) ** 2, batch)
            loss = loss + self.force_weight * force_loss
            metrics["force_loss"] = force_loss.detach()
        return loss, metrics
