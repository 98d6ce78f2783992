"""``fisher-cd``: the Fisher divergence on labelled frames plus contrastive divergence against the model's
own samples: stability without new reference labels.

Loss per batch: Fisher(batch) + ``weight`` · CD(batch; negatives), both dimensionless. The Fisher term
(½‖βF_ref − βF_θ‖², optionally Huber) keeps the forces of the labelled frames; the CD term is the gradient
of the Boltzmann log-likelihood of the reference positions, β·(⟨U_θ⟩_data − ⟨U_θ⟩_model), whose model
samples are persistent Langevin chains started from ``negatives``: frames the model's own MD visited
(:mod:`.contrastive`). Where the model's MD goes and the reference never does, the energy rises; where
the reference goes, it falls. No reference call is spent on the negatives: they carry positions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from .contrastive import CD_DEFAULTS, ContrastiveDivergence
from .score import ScoreMatching

#: cd_options of ``fisher-cd`` besides contrastive divergence's own: the file of negatives, the CD weight
FISHER_CD_DEFAULTS = {**CD_DEFAULTS, "reinit": 0.0, "negatives": None, "weight": 1.0}


def read_negatives(path: str | Path) -> dict[tuple, torch.Tensor]:
    """Positions (Å) of the frames in ``path`` (any structure file), stacked per composition."""
    from ..data import read_structures
    from ..data.geometry import group_by_composition

    frames = read_structures(path)
    if not frames:
        raise BoltzmatchError(f"{path}: holds no frames to use as negatives")
    return {key: torch.as_tensor(np.stack([a.positions for a in group]))
            for key, group in group_by_composition(frames).items()}


class FisherContrastive:
    """The ``fisher-cd`` objective (see the module docstring).

    Parameters
    ----------
    temperature : K, where the batch has no per-frame temperatures
    options : ``negatives`` (a structure file, required), ``weight`` of the CD term, and contrastive
        divergence's options (steps, timestep, friction, buffer, reinit, alpha)
    huber_delta : eV/Å, the Fisher term's Huber δ (None: squared residuals)
    stress_weight : the Fisher term's stress weight on crystals with stress labels (:class:`.score.ScoreMatching`)
    """

    kind = "fisher-cd"
    needs: tuple[str, ...] = ("forces",)

    def __init__(self, temperature: float | None, options: Mapping, *, huber_delta: float | None = None,
                 seed: int = 0, stress_weight: float = 0.0):
        options = {**FISHER_CD_DEFAULTS, **options}
        if not options["negatives"]:
            raise BoltzmatchError("fisher-cd needs cd_options negatives: a file of the model's own MD frames")
        if not float(options["weight"]) >= 0:
            raise BoltzmatchError(f"fisher-cd: cd_options weight must be ≥ 0, got {options['weight']}")
        self.weight = float(options.pop("weight"))
        negatives = read_negatives(options.pop("negatives"))
        self.fisher = ScoreMatching("fisher", temperature, huber_delta=huber_delta, stress_weight=stress_weight)
        self.needs = self.fisher.needs
        self.cd = ContrastiveDivergence(temperature, seed=seed, negatives=negatives, **options)

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fisher, fisher_metrics = self.fisher(model, batch)
        if not self.weight:
            return fisher, fisher_metrics
        cd, cd_metrics = self.cd(model, batch)
        return fisher + self.weight * cd, {**fisher_metrics, **cd_metrics}

    def state_dict(self) -> dict:
        return self.cd.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.cd.load_state_dict(state)
