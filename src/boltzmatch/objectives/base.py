"""The objective contract."""

from __future__ import annotations

from typing import Protocol

import torch

from ..data.atoms_batch import AtomsBatch


class Objective(Protocol):
    """``objective(model, batch) -> (loss, metrics)``; loss a scalar tensor to minimise.

    ``needs`` names the labels the objective reads (``energy``, ``forces``), so a trainer can
    refuse data without them before the first step.
    """

    needs: tuple[str, ...]

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, float]]: ...
