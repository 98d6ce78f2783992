"""The objective contract, and β per structure (1/eV) that every Boltzmann objective weighs by."""

from __future__ import annotations

from typing import Protocol

import torch

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..units import boltzmann_beta


class Objective(Protocol):
    """``objective(model, batch) -> (loss, metrics)``; loss a scalar tensor to minimise, metrics detached
    scalar tensors (left on the model's device: a trainer reads them back once an epoch, not every step).

    ``needs`` names the labels the objective reads (``energy``, ``forces``), so a trainer can
    refuse data without them before the first step.

    An objective whose loss is a function of the model's energy (eV) and forces (eV/Å) at the batch's own
    positions (the supervised losses, ``fisher``) says so with ``predictive = True`` and also gives
    ``from_predictions(batch, energy, forces, stress=None) -> (loss, metrics)`` (stress: crystals', eV/Å³, for
    objectives that weigh it): validation then takes it from the
    evaluations that give the errors, and such an objective evaluates the model once per call.
    """

    needs: tuple[str, ...]

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


def structure_beta(batch: AtomsBatch, temperature: float | None) -> torch.Tensor:
    """(n_structures,) β in 1/eV: the batch's own temperatures if it has them, else ``temperature``."""
    if batch.temperature is not None:
        from ase import units

        return 1.0 / (units.kB * batch.temperature)
    if temperature is None:
        raise BoltzmatchError("score objectives need a temperature (K): pass --temperature")
    return torch.full((batch.n_structures,), boltzmann_beta(temperature), dtype=batch.positions.dtype,
                      device=batch.positions.device)


def structure_mean(values: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    """The mean of per-structure ``values`` (n_structures,) over the structures that count (``batch.weight``: a
    padded batch's own structures; all of them without it)."""
    if batch.weight is None:
        return values.mean()
    return (values * batch.weight).sum() / batch.weight.sum()


def atom_mean(values: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    """The mean of per-atom ``values`` (n_atoms, ...) over every component of the atoms of the structures that count
    (see :func:`structure_mean`)."""
    if batch.weight is None:
        return values.mean()
    weight = batch.weight[batch.structure_index]
    per_atom = values.reshape(len(values), -1)
    return (per_atom * weight[:, None]).sum() / (weight.sum() * per_atom.shape[1])
