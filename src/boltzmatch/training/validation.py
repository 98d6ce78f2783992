"""What the trainer measures on held-out indices of the data: errors (meV, meV/Å) and the objective."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from ..data.packed import PackedStructures
from ..models.base import predict_labels
from .distributed import Distributed
from .errors_accumulator import ErrorAccumulator

#: ``predict(batch) -> (energy, forces, stress)``: a model's energy (eV), forces (eV/Å) and crystals' stress (eV/Å³,
#: or None) on a batch, e.g. replayed as a CUDA graph (:class:`~.graphed_step.Predictions`)
Predict = Callable[[AtomsBatch], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]


def split_errors(model: nn.Module, data: PackedStructures, indices: np.ndarray, batch_size: int,
                 dist: Distributed | None = None, predict: Predict | None = None) -> dict[str, float]:
    """Energy, force and stress MAE/RMSE of ``model`` on ``indices`` (see :class:`ErrorAccumulator`); {} without
    labels."""
    if data.full.energy is None and data.full.forces is None:
        return {}
    return _accumulate(model, data, indices, batch_size, dist, predict=predict).result()


def _accumulate(model: nn.Module, data: PackedStructures, indices: np.ndarray, batch_size: int,
                dist: Distributed | None, objective=None, predict: Predict | None = None,
                pad: Callable[[AtomsBatch], AtomsBatch | None] | None = None) -> ErrorAccumulator:
    """The errors of ``model`` on ``indices`` in chunks of ``batch_size`` and, for a predictive ``objective``,
    its values from the same evaluations (summed on the device, all-reduced over processes); ``predict``
    evaluates the model where given; ``pad`` pads a batch to one shape (``None``: it does not fit, and runs as it
    is), so that ``predict``'s CUDA graph replays for molecules of different sizes (training/padding.py)."""
    acc = ErrorAccumulator()
    mine = indices if dist is None else dist.mine(indices)
    has_forces, has_stress = data.full.forces is not None, data.full.stress is not None
    if predict is None:
        def predict(batch):
            return predict_labels(model, batch, forces=has_forces, stress=has_stress)
    for start in range(0, len(mine), batch_size):
        batch = data.batch(mine[start:start + batch_size])
        if pad is not None:
            batch = pad(batch) or batch
        energy, forces, stress = predict(batch)
        loss = None if objective is None else objective.from_predictions(batch, energy, forces, stress)[0]
        acc.add(batch, energy, forces, loss, stress)
    if dist is not None and dist.active:
        acc.load_tensor(dist.all_sum(acc.as_tensor()))
    return acc


def validate(objective, model: nn.Module, data: PackedStructures, indices: np.ndarray, batch_size: int,
             seed: int, dist: Distributed, predict: Predict | None = None,
             pad: Callable[[AtomsBatch], AtomsBatch | None] | None = None) -> tuple[dict[str, float], float]:
    """The errors of ``model`` on ``indices`` (:func:`split_errors`) and the mean of ``objective`` over them.

    An objective that is a function of the model's energy and forces at the data (``predictive``: the
    supervised losses, fisher) is computed from the evaluations that give the errors: one pass over the
    data, one read-back from the device. Any other (dsm, ssm, ism) needs passes of its own
    (:func:`objective_loss`, in chunks of half ``batch_size``, as in training). ``predict``, ``pad``: see
    :func:`_accumulate` (``pad`` applies to predictive objectives)."""
    if getattr(objective, "predictive", False):
        acc = _accumulate(model, data, indices, batch_size, dist, objective, predict, pad)
        return acc.result(), acc.mean_loss()
    errors = split_errors(model, data, indices, batch_size, dist, predict)
    return errors, objective_loss(objective, model, data, indices, max(1, batch_size // 2), seed, dist)


def objective_loss(objective, model: nn.Module, packed: PackedStructures, indices: np.ndarray, batch_size: int,
                   seed: int, dist: Distributed) -> float:
    """Mean objective over ``indices`` with a fixed noise seed (stochastic objectives compare fairly)."""
    mine = dist.mine(indices)
    weighted = torch.zeros((), dtype=torch.float64, device=packed.device)  # read back once, after the last chunk
    with torch.random.fork_rng():
        torch.manual_seed(seed + 12345)
        for start in range(0, len(mine), batch_size):
            chunk = mine[start:start + batch_size]
            loss, _ = objective(model, packed.batch(chunk))
            weighted = weighted + loss.detach().double() * len(chunk)
    total = dist.all_sum(torch.tensor([weighted.item(), len(mine)], dtype=torch.float64))
    return float(total[0] / total[1])
