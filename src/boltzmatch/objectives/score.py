"""Score-matching objectives: the Fisher divergence to the Boltzmann distribution.

For p_θ ∝ exp(−βU_θ) the score is s_θ = βF_θ (1/Å). Each objective returns the mean over
structures of a per-structure value summed over all 3N coordinates (dimensionless):

* ``fisher``: ½‖βF_ref − βF_θ‖² (explicit score matching with reference forces).
* ``ism``: ½β²‖F_θ‖² + β∇·F_θ, with ∇·F_θ = −ΔU_θ exact over all 3N coordinates (Hyvärinen).
* ``ssm``: −β vᵀ(∇²U_θ)v + ½β²‖F_θ‖² averaged over k probes v (sliced, variance-reduced form).
* ``dsm``: ½‖σβF_θ(x + σε) + ε‖² at noise σ (Å) drawn from the given levels; the weight
  λ(σ) = σ² makes levels comparable. Learns the score of the σ-smoothed density.

β = 1/(k_B T) in 1/eV, per structure when the batch carries temperatures (frames from several
temperatures weigh by their own β), else from ``temperature``. ``ism`` − ``fisher`` is constant
in θ (integration by parts), so both have the same minimiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces, energy_forces_and_stress
from ..models.derivatives import energy_laplacian
from .base import structure_beta, structure_mean
from .supervised import DEFAULT_FORCE_WEIGHT, SupervisedLoss, virial_per_atom_errors

SCORE_OBJECTIVES = ("fisher", "ism", "ssm", "dsm")
DSM_SIGMA_FRACTION = 0.125  # σ = this × the narrowest bond-length standard deviation in the data


def dsm_sigma_from_data(structures, fraction: float = DSM_SIGMA_FRACTION) -> float:
    """The dsm noise level σ (Å) for ``structures``: ``fraction`` × the smallest thermal width of a bond.

    dsm learns the score of the data smoothed by N(0, σ²); where σ exceeds a mode's thermal width
    the learned forces of that mode shrink. The width of the stiffest bond (the standard deviation
    of its length over the frames; bonds from ASE's natural cutoffs × 1.2 on each molecule's first
    frame) sets the scale, and the data's own temperature is in it. On xTB ethanol at 500 K the C–H
    widths are ≈ 0.04 Å: σ = 0.05 Å gave SchNet forces 3× too small (Pearson 0.848), σ = 0.005 Å
    (⅛ of the width) gave 0.992.
    """
    from ..data.geometry import bond_lengths, find_bonds, group_by_composition

    groups = group_by_composition(structures)
    widths = []
    for frames in groups.values():
        if len(frames) < 2:
            continue
        bonds = find_bonds(frames[0])
        if len(bonds.i):
            widths.append(float(bond_lengths(frames, bonds).std(axis=0).min()))
    widths = [w for w in widths if w > 0]
    if not widths:
        raise BoltzmatchError("cannot derive the dsm noise level from the data (no molecule with bonds in two or "
                              "more frames); pass --sigma in Å")
    return fraction * min(widths)


def _per_structure(values: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
    """Sum (n_atoms, ...) values over each structure's atoms and coordinates → (n_structures,)."""
    flat = values.reshape(values.shape[0], -1).sum(1)
    return torch.zeros(batch.n_structures, dtype=flat.dtype, device=flat.device).index_add(0, batch.structure_index,
                                                                                          flat)


class ScoreMatching:
    """A score-matching objective, optionally mixed with energy and force matching terms.

    Parameters
    ----------
    kind : ``fisher``, ``ism``, ``ssm`` or ``dsm``
    temperature : K, used where the batch has no per-structure temperature
    energy_weight, force_weight : weights of the supervised per-atom energy MSE (eV²) and force
        MSE (eV²/Å²) added to the score term (0 leaves them out)
    sigma : noise levels in Å for ``dsm``
    n_probes : Hutchinson probes per structure for ``ssm``
    probe : ``gaussian`` or ``rademacher``
    antithetic : for ``dsm``, evaluate every structure at x + σε and x − σε (twice the cost); the
        term linear in ε then cancels, which removes most of dsm's variance at small σ
    huber_delta : for ``fisher``, eV/Å: force residuals beyond it weigh linearly, not quadratically
        (β² times the Huber loss instead of β²/2 times the square), so that a few labelled frames far
        from equilibrium, with forces of 10 eV/Å and more, do not outweigh the rest; ``None``: the plain
        Fisher divergence
    stress_weight : for ``fisher`` on crystals with stress labels, the weight of the virial-per-atom MSE
        (eV²/atom²) as in the supervised losses, scaled as the Fisher divergence scales forces: per structure,
        the Fisher term is β²·3N/2 × the force MSE where ``energy-forces`` weighs it by 100, so the stress
        term is ``stress_weight`` × β²·3N/200 × the virial MSE (the same balance of stress to forces)
    """

    def __init__(self, kind: str, temperature: float | None = None, *, energy_weight: float = 0.0,
                 force_weight: float = 0.0, sigma: Sequence[float] = (0.05,), n_probes: int = 1,
                 probe: str = "rademacher", score_weight: float = 1.0, antithetic: bool = False,
                 huber_delta: float | None = None, stress_weight: float = 0.0):
        if kind not in SCORE_OBJECTIVES:
            raise BoltzmatchError(f"unknown objective {kind!r}; expected one of {', '.join(SCORE_OBJECTIVES)}")
        if probe not in ("gaussian", "rademacher"):
            raise BoltzmatchError(f"probe must be gaussian or rademacher, got {probe!r}")
        if kind == "dsm" and (not sigma or min(sigma) <= 0):
            raise BoltzmatchError(f"dsm needs positive noise levels sigma (Å), got {list(sigma)}")
        if huber_delta is not None and (kind != "fisher" or not huber_delta > 0):
            raise BoltzmatchError(f"huber-delta (eV/Å) must be positive and goes with objective fisher only, "
                                  f"got {huber_delta} with {kind}")
        if stress_weight and (kind != "fisher" or not stress_weight > 0):
            raise BoltzmatchError(f"stress-weight must be positive and goes with the objectives fisher, fisher-cd, "
                                  f"energy, forces and energy-forces, got {stress_weight} with {kind}")
        self.kind = kind
        self.stress_weight = float(stress_weight)
        self.huber_delta = huber_delta
        self.temperature = temperature
        self.sigma = [float(s) for s in sigma]
        self.n_probes = int(n_probes)
        self.probe = probe
        self.score_weight = score_weight
        self.antithetic = antithetic
        self.supervised = None
        if energy_weight or force_weight:
            loss = "energy-forces" if energy_weight and force_weight else ("energy" if energy_weight else "forces")
            self.supervised = SupervisedLoss(loss, energy_weight, force_weight)
        needs = {"forces"} if kind == "fisher" else set()
        if self.stress_weight:
            needs.add("stress")
        if self.supervised is not None:
            needs |= set(self.supervised.needs)
        self.needs = tuple(sorted(needs))

    def score_term(self, model: torch.nn.Module, batch: AtomsBatch) -> torch.Tensor:
        """(n_structures,) per-structure score-matching values."""
        beta = structure_beta(batch, self.temperature)
        beta_atoms = beta[batch.structure_index][:, None]
        if self.kind == "fisher":
            _, forces = energy_and_forces(model, batch, create_graph=True)
            return self._fisher_values(batch, forces, beta_atoms)
        if self.kind == "dsm":
            generator_device = batch.positions.device
            levels = torch.as_tensor(self.sigma, dtype=batch.positions.dtype, device=generator_device)
            pick = torch.randint(len(self.sigma), (batch.n_structures,), device=generator_device)
            sigma_atoms = levels[pick][batch.structure_index][:, None]
            noise = torch.randn_like(batch.positions)
            clean = replace(batch, noise_level=levels[pick])  # read by noise-conditional models
            if self.antithetic:  # x + σε and x − σε in one model call on a batch of twice the size
                clean, noise = clean.tile(2), torch.cat([noise, -noise])
                sigma_atoms, beta_atoms = sigma_atoms.repeat(2, 1), beta_atoms.repeat(2, 1)
            noisy = clean.with_positions((clean.positions + sigma_atoms * noise).detach())
            _, forces = energy_and_forces(model, noisy, create_graph=True)
            values = 0.5 * _per_structure((sigma_atoms * beta_atoms * forces + noise) ** 2, noisy)
            return values.reshape(-1, batch.n_structures).mean(0)
        positions = batch.positions.detach().requires_grad_(True)
        moved = batch.with_positions(positions)
        energy = model(moved)
        (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=True)
        square = 0.5 * beta**2 * _per_structure(grad**2, batch)
        if self.kind == "ism":
            return square - beta * energy_laplacian(energy, positions, moved, create_graph=True)
        curvature = torch.zeros_like(energy)
        for _ in range(self.n_probes):
            if self.probe == "rademacher":
                v = torch.randint(0, 2, positions.shape, device=positions.device).to(positions.dtype) * 2 - 1
            else:
                v = torch.randn_like(positions)
            (hv,) = torch.autograd.grad((grad * v).sum(), positions, create_graph=True)
            curvature = curvature + _per_structure(v * hv, batch)
        return square - beta * curvature / self.n_probes

    def _fisher_values(self, batch: AtomsBatch, forces: torch.Tensor, beta_atoms: torch.Tensor) -> torch.Tensor:
        """(n_structures,) Fisher divergence of model ``forces`` (eV/Å) to the reference's, β (1/eV) per atom."""
        if self.huber_delta is not None:
            residual = torch.nn.functional.huber_loss(forces, batch.forces, reduction="none", delta=self.huber_delta)
            return _per_structure(beta_atoms**2 * residual, batch)
        return 0.5 * _per_structure((beta_atoms * (batch.forces - forces)) ** 2, batch)

    @property
    def predictive(self) -> bool:
        """Whether the loss is a function of the model's energy and forces at the batch's positions (fisher)."""
        return self.kind == "fisher"

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.predictive and self.stress_weight:  # one evaluation: the Fisher term, the stress, the rest
            return self.from_predictions(batch, *energy_forces_and_stress(model, batch, create_graph=True))
        if self.predictive:  # one evaluation for the Fisher term and the supervised terms mixed in
            energy, forces = energy_and_forces(model, batch, create_graph=True)
            return self.from_predictions(batch, energy, forces)
        return self._combine(self.score_term(model, batch).mean(),
                             None if self.supervised is None else self.supervised(model, batch))

    def from_predictions(self, batch: AtomsBatch, energy: torch.Tensor, forces: torch.Tensor,
                         stress: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """For ``fisher`` (:attr:`predictive`): the loss and metrics of a model's ``energy`` (n_structures,) eV and
        ``forces`` (n_atoms, 3) eV/Å on ``batch``, and its ``stress`` (n_structures, 3, 3) eV/Å³ where the
        stress weighs."""
        if not self.predictive:
            raise TypeError(f"{self.kind} needs the model itself, not its energy and forces at the data")
        beta = structure_beta(batch, self.temperature)
        term = structure_mean(self._fisher_values(batch, forces, beta[batch.structure_index][:, None]), batch)
        loss, metrics = self._combine(term, None if self.supervised is None
                                      else self.supervised.from_predictions(batch, energy, forces))
        if self.stress_weight:
            errors = virial_per_atom_errors(stress, batch)
            scale = beta**2 * 3 * batch.atoms_per_structure.to(beta.dtype) / (2 * DEFAULT_FORCE_WEIGHT)
            loss = loss + self.stress_weight * structure_mean(scale * errors, batch)
            metrics["stress_loss"] = structure_mean(errors, batch).detach()
        return loss, metrics

    def _combine(self, term: torch.Tensor, supervised: tuple | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.score_weight * term
        metrics = {f"{self.kind}_loss": term.detach()}
        if supervised is not None:
            extra, extra_metrics = supervised
            loss = loss + extra
            metrics.update(extra_metrics)
        return loss, metrics
