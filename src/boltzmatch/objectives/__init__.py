"""Objectives: ``objective(model, batch) -> (loss, metrics)``; supervised energy/force losses."""

from .base import Objective
from .supervised import LOSSES, SupervisedLoss

__all__ = ["LOSSES", "Objective", "SupervisedLoss"]
