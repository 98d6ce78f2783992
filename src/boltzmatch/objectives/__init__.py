"""Objectives: ``objective(model, batch) -> (loss, metrics)``; supervised and score matching."""

from .base import Objective
from .score import OBJECTIVES, SCORE_OBJECTIVES, ScoreMatching, make_objective, structure_beta
from .supervised import LOSSES, SupervisedLoss

__all__ = ["LOSSES", "OBJECTIVES", "SCORE_OBJECTIVES", "Objective", "ScoreMatching", "SupervisedLoss",
           "make_objective", "structure_beta"]
