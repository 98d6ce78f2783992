"""Every objective by name: the one list the CLI, the GUI, the trainer and the landscapes draw from."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import BoltzmatchError
from .score import SCORE_OBJECTIVES, ScoreMatching
from .supervised import LOSSES, SupervisedLoss

#: every objective a model can be trained or fine-tuned with
OBJECTIVES = LOSSES + SCORE_OBJECTIVES + ("cd", "fisher-cd")
#: objectives blind to a constant energy shift (every one but the supervised losses)
SHIFT_BLIND_OBJECTIVES = SCORE_OBJECTIVES + ("cd", "fisher-cd")
#: one line per objective, for help texts (the app's tooltips); β = 1/(k_B T) in 1/eV, F = −∇U in eV/Å
OBJECTIVE_DESCRIPTIONS = {
    "energy": "per-atom energy MSE (eV²) against reference energies",
    "forces": "force-component MSE (eV²/Å²) against reference forces",
    "energy-forces": "energy MSE + force MSE (weights 1 and 100 by default): the usual supervised fit",
    "fisher": "Fisher divergence to the Boltzmann distribution with reference forces: ½‖βF_ref − βF_θ‖², "
              "β²/2 × force matching (needs --temperature)",
    "ism": "implicit (Hyvärinen) score matching from positions alone: ½β²‖F_θ‖² − βΔU_θ; same minimiser as fisher",
    "ssm": "sliced score matching from positions alone: ism with random projections of the Hessian (cheaper)",
    "dsm": "denoising score matching from positions alone: the score of the data smoothed by noise σ (Å)",
    "cd": "contrastive divergence from positions alone: maximum likelihood of p ∝ exp(−βU) with model samples "
          "from Langevin MD",
    "fisher-cd": "fisher on labelled frames plus cd against the model's own MD frames (--cd-option "
                 "negatives=FILE): raises the energy where the model's MD goes and the reference never does",
}
#: objectives that can weigh a crystal's stress (``stress_weight``): the supervised losses and the Fisher divergence
#: (also fisher-cd's)
STRESS_OBJECTIVES = LOSSES + ("fisher", "fisher-cd")
#: objectives that need positions only (no reference energies or forces)
POSITIONS_ONLY_OBJECTIVES = ("ism", "ssm", "dsm", "cd")


def make_objective(objective: str, *, temperature: float | None = None, energy_weight: float = 1.0,
                   force_weight: float = 100.0, sigma: Sequence[float] = (0.05,), n_probes: int = 1,
                   probe: str = "rademacher", antithetic: bool = False, cd_options: dict | None = None,
                   seed: int = 0, huber_delta: float | None = None, stress_weight: float = 0.0):
    """The objective named ``objective`` (one of :data:`OBJECTIVES`).

    ``cd`` is contrastive divergence (:mod:`.contrastive`) with ``cd_options`` (steps, timestep,
    friction, buffer, reinit, alpha; unknown keys are a one-line error) and sampler ``seed``;
    ``fisher-cd`` (:mod:`.fisher_cd`) adds it, chains started from ``cd_options["negatives"]`` (a file of
    the model's MD frames) and weighted by ``cd_options["weight"]``, to the Fisher divergence (with
    ``huber_delta``).

    For supervised losses the weights weigh energy and forces, and ``stress_weight`` the virial per atom of
    crystals with stress labels (:mod:`.supervised`; supervised losses, ``fisher`` and ``fisher-cd``); for score
    objectives the energy and force weights weigh the optional supervised terms mixed in (pass 0 to leave them
    out).
    ``huber_delta`` (eV/Å) makes ``fisher`` robust to outlying force residuals (see :class:`ScoreMatching`).
    """
    if huber_delta is not None and objective not in ("fisher", "fisher-cd"):
        raise BoltzmatchError(f"huber-delta goes with objective fisher only, got objective {objective}")
    if stress_weight and objective not in STRESS_OBJECTIVES:
        raise BoltzmatchError(f"stress-weight goes with the objectives {', '.join(STRESS_OBJECTIVES)}, "
                              f"got objective {objective}")
    if objective in LOSSES:
        return SupervisedLoss(objective, energy_weight, force_weight, stress_weight)
    if objective == "fisher-cd":
        from .fisher_cd import FISHER_CD_DEFAULTS, FisherContrastive

        options = dict(cd_options or {})
        unknown = sorted(set(options) - set(FISHER_CD_DEFAULTS))
        if unknown:
            raise BoltzmatchError(f"fisher-cd: unknown option(s) {', '.join(unknown)}; "
                                  f"allowed: {', '.join(FISHER_CD_DEFAULTS)}")
        return FisherContrastive(temperature, options, huber_delta=huber_delta, seed=seed, stress_weight=stress_weight)
    if objective == "cd":
        from .contrastive import CD_DEFAULTS, ContrastiveDivergence  # the MD sampler, only when asked

        options = dict(cd_options or {})
        unknown = sorted(set(options) - set(CD_DEFAULTS))
        if unknown:
            raise BoltzmatchError(f"cd: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(CD_DEFAULTS)}")
        return ContrastiveDivergence(temperature, seed=seed, **options)
    if objective not in SCORE_OBJECTIVES:
        raise BoltzmatchError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    return ScoreMatching(objective, temperature, energy_weight=energy_weight, force_weight=force_weight,
                         sigma=sigma, n_probes=n_probes, probe=probe, antithetic=antithetic,
                         huber_delta=huber_delta, stress_weight=stress_weight)
