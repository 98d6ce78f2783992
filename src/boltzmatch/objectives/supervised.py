"""Supervised energy and force losses.

The energy term is the mean squared error of the energy *per atom* (eV²/atom²), so that
molecules of different sizes weigh alike; the force term is the mean squared error over
force components (eV²/Å²). ``loss = energy_weight · L_E + force_weight · L_F + stress_weight · L_S``.

The stress term (crystals with stress labels) is the mean squared error of the virial *per atom*,
``V σ / N`` (eV/atom) over the 6 Voigt components: the strain derivative of the energy per atom, so it weighs
like the energy term (1 GPa is 0.10 eV/atom in fcc Al, 16.6 Å³ per atom), whatever the cell's size.
"""

from __future__ import annotations

import torch

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces, energy_forces_and_stress, voigt
from .base import atom_mean, structure_mean

LOSSES = ("energy", "forces", "energy-forces")
#: per-atom energy errors a loss surface can be drawn for: MSE (the training loss), MAE, Huber (δ 0.01 eV/atom)
ENERGY_LOSSES = ("energy", "energy-mae", "energy-huber")


#: the force weight of the supervised losses unless told (eV²/Å² per eV²/atom² of energy); the Fisher divergence
#: scales its stress term by its own force weight over this one (:mod:`.score`)
DEFAULT_FORCE_WEIGHT = 100.0


def virial_per_atom_errors(stress: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    """(n_structures,) the mean over Voigt components of the squared error of the virial per atom (eV²/atom²) of
    ``stress`` (n_structures, 3, 3) eV/Å³ against ``batch.stress`` (n_structures, 6) eV/Å³; 0 for a structure
    without a stress label (a NaN row, :attr:`~.AtomsBatch.stress_labelled`), which then adds nothing to the loss
    or its gradient. Averaged by :func:`.base.structure_mean`, the term is the mean over all structures of each
    one's stress loss (0 without a label), as MACE weighs a set where some configurations lack a stress."""
    labelled = batch.stress_labelled
    volume_per_atom = torch.linalg.det(batch.cell).abs() / batch.atoms_per_structure.to(stress.dtype)
    target = torch.where(labelled[:, None], batch.stress, torch.zeros_like(batch.stress))  # no NaN reaches a gradient
    per_atom = (voigt(stress) - target) * volume_per_atom[:, None]
    return (per_atom**2).mean(1) * labelled.to(stress.dtype)


def virial_per_atom_loss(stress: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    """The mean over structures of :func:`virial_per_atom_errors` (eV²/atom²)."""
    return structure_mean(virial_per_atom_errors(stress, batch), batch)


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
    """Energy, force or energy+force matching, and with ``stress_weight`` > 0 the stress of crystals."""

    def __init__(self, loss: str = "energy-forces", energy_weight: float = 1.0,
                 force_weight: float = DEFAULT_FORCE_WEIGHT, stress_weight: float = 0.0):
        if loss not in LOSSES:
            raise BoltzmatchError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        if stress_weight < 0:
            raise BoltzmatchError(f"stress weight must be 0 or more, got {stress_weight}")
        self.loss = loss
        self.energy_weight = energy_weight if loss != "forces" else 0.0
        self.force_weight = force_weight if loss != "energy" else 0.0
        self.stress_weight = float(stress_weight)
        self.needs = tuple(n for n, w in (("energy", self.energy_weight), ("forces", self.force_weight),
                                          ("stress", self.stress_weight)) if w)

    #: the loss is a function of the model's energy and forces at the batch's positions (see :meth:`from_predictions`)
    predictive = True

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.stress_weight:
            return self.from_predictions(batch, *energy_forces_and_stress(model, batch, create_graph=True))
        use_forces = self.force_weight > 0
        energy, forces = energy_and_forces(model, batch, create_graph=use_forces, compute_forces=use_forces)
        return self.from_predictions(batch, energy, forces)

    def from_predictions(self, batch: AtomsBatch, energy: torch.Tensor, forces: torch.Tensor | None,
                         stress: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss and metrics of a model's ``energy`` (n_structures,) eV, ``forces`` (n_atoms, 3) eV/Å and
        ``stress`` (n_structures, 3, 3) eV/Å³ on ``batch`` (``forces`` may be ``None`` when the force weight is 0,
        ``stress`` when the stress weight is)."""
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
        if self.stress_weight:
            stress_loss = virial_per_atom_loss(stress, batch)
            loss = loss + self.stress_weight * stress_loss
            metrics["stress_loss"] = stress_loss.detach()
        return loss, metrics
