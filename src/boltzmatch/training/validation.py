"""What the trainer measures on held-out indices of the data: errors (meV, meV/Å) and the objective."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.packed import PackedStructures
from ..models.base import energy_and_forces
from .distributed import Distributed
from .errors_accumulator import ErrorAccumulator


def split_errors(model: nn.Module, data: PackedStructures, indices: np.ndarray, batch_size: int,
                 dist: Distributed | None = None) -> dict[str, float]:
    """Energy and force MAE/RMSE of ``model`` on ``indices`` (see :class:`ErrorAccumulator`); {} without labels."""
    acc = ErrorAccumulator()
    mine = indices if dist is None else dist.mine(indices)
    has_forces = data.full.forces is not None
    if data.full.energy is None and not has_forces:
        return {}
    for start in range(0, len(mine), batch_size):
        batch = data.batch(mine[start:start + batch_size])
        energy, forces = energy_and_forces(model, batch, compute_forces=has_forces)
        acc.add(batch, energy, forces)
    if dist is not None and dist.active:
        acc.load_tensor(dist.all_sum(acc.as_tensor()))
    return acc.result()


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
