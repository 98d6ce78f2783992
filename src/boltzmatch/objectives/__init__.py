"""Objectives: ``objective(model, batch) -> (loss, metrics)``; supervised, score matching, contrastive divergence."""

from .base import Objective, structure_beta
from .registry import OBJECTIVES, POSITIONS_ONLY_OBJECTIVES, SHIFT_BLIND_OBJECTIVES, make_objective
from .score import SCORE_OBJECTIVES, ScoreMatching, dsm_sigma_from_data
from .supervised import LOSSES, SupervisedLoss

__all__ = ["LOSSES", "OBJECTIVES", "POSITIONS_ONLY_OBJECTIVES", "SCORE_OBJECTIVES", "SHIFT_BLIND_OBJECTIVES",
           "Objective", "ScoreMatching", "SupervisedLoss", "dsm_sigma_from_data", "make_objective", "structure_beta"]
