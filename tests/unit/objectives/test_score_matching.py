"""Score matching recovers analytic Boltzmann distributions sampled exactly.

Harmonic wells U = ½ Σ_c k_c x_c² (one atom per structure; exact samples x_c ~ N(0, 1/(βk_c)))
and a 1D double well (exact samples by inverse CDF on a fine grid). Models here are tiny
EnergyModels with known functional form, so the only error is statistical.
"""

import math

import numpy as np
import pytest
import torch
from ase import units
from torch import nn

from boltzmatch.data import AtomsBatch
from boltzmatch.objectives import ScoreMatching, make_objective

TEMPERATURE = 300.0
BETA = 1.0 / (units.kB * TEMPERATURE)  # 1/eV


class HarmonicWell(nn.Module):
    """U = ½ Σ_a Σ_c k_c x_{a,c}² in eV with k_c = exp(log_k_c) in eV/Å²."""

    def __init__(self, n_axes: int = 3):
        super().__init__()
        self.log_k = nn.Parameter(torch.zeros(n_axes, dtype=torch.float64))

    def forward(self, batch):
        k = torch.exp(self.log_k).expand(3) if self.log_k.numel() == 1 else torch.exp(self.log_k)
        per_atom = 0.5 * (k * batch.positions**2).sum(1)
        return torch.zeros(batch.n_structures, dtype=per_atom.dtype).index_add(0, batch.structure_index, per_atom)


def gaussian_batch(k, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)) / np.sqrt(BETA * np.asarray(k))
    return AtomsBatch(
        positions=torch.as_tensor(x), numbers=torch.ones(n, dtype=torch.long),
        structure_index=torch.arange(n), cell=torch.zeros(n, 3, 3, dtype=torch.float64),
        pbc=torch.zeros(n, 3, dtype=torch.bool),
    )


def labelled_gaussian_batch(k, n, seed=0):
    """``gaussian_batch`` with the well's exact forces −k·x (eV/Å) as labels."""
    batch = gaussian_batch(k, n, seed=seed)
    batch.forces = -torch.as_tensor(k, dtype=torch.float64) * batch.positions
    return batch


def fit(model, objective, batch, seed=0):
    """Full-batch L-BFGS; the probes and noise are drawn with a fixed seed in every evaluation, so
    stochastic objectives become a deterministic sample average that L-BFGS can minimise."""
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        optimizer.zero_grad()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            loss, _ = objective(model, batch)
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


@pytest.mark.parametrize("k", [[8.0, 8.0, 8.0], [2.0, 8.0, 30.0]], ids=["isotropic", "anisotropic"])
@pytest.mark.parametrize(
    "objective",
    [
        ScoreMatching("ism", TEMPERATURE),
        ScoreMatching("ssm", TEMPERATURE, n_probes=4, probe="gaussian"),
        ScoreMatching("ssm", TEMPERATURE, n_probes=4, probe="rademacher"),
        # small σ: the smoothed variance 1/(βk) + σ² is within 0.5% of 1/(βk) for k ≤ 30;
        # antithetic noise pairs keep the estimator's variance small at such σ
        ScoreMatching("dsm", TEMPERATURE, sigma=[0.002], antithetic=True),
    ],
    ids=["ism", "ssm-gaussian", "ssm-rademacher", "dsm"],
)
def test_harmonic_force_constants_within_2_percent(k, objective):
    batch = gaussian_batch(k, 40000, seed=1)
    model = HarmonicWell()
    with torch.no_grad():
        model.log_k.copy_(torch.log(torch.tensor(k, dtype=torch.float64)) + 0.7)  # start 2× off
    fit(model, objective, batch)
    learned = torch.exp(model.log_k).detach().numpy()
    np.testing.assert_allclose(learned, k, rtol=0.02)


def test_fisher_is_beta_squared_half_force_mse():
    k = [2.0, 8.0, 30.0]
    batch = labelled_gaussian_batch(k, 500, seed=2)
    model = HarmonicWell()
    with torch.no_grad():
        model.log_k.normal_()
    loss, _ = make_objective("fisher", temperature=TEMPERATURE, energy_weight=0, force_weight=0)(model, batch)
    predicted = -torch.exp(model.log_k) * batch.positions
    force_mse = ((batch.forces - predicted) ** 2).sum(1).mean()  # per structure, over 3N components
    assert float(loss.detach()) == pytest.approx(float(0.5 * BETA**2 * force_mse), rel=1e-14)


def test_per_structure_temperatures_weigh_by_their_own_beta():
    batch = gaussian_batch([5.0] * 3, 4, seed=3)
    batch.forces = torch.zeros_like(batch.positions)
    batch.temperature = torch.tensor([300.0, 300.0, 600.0, 600.0], dtype=torch.float64)
    model = HarmonicWell()
    term = ScoreMatching("fisher").score_term(model, batch)
    beta = 1.0 / (units.kB * batch.temperature)
    expected = 0.5 * beta**2 * (batch.positions**2).sum(1)  # k = 1
    torch.testing.assert_close(term, expected)


class Polynomial1D(nn.Module):
    """U(x) = Σ_{p=1..6} θ_p x^p on the x coordinate of one atom (eV, x in Å)."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(6, dtype=torch.float64))

    def forward(self, batch):
        x = batch.positions[:, 0]
        powers = torch.stack([x**p for p in range(1, 7)], dim=1)
        # confine y and z harmonically so the density is proper; they carry no parameters
        atom = powers @ self.theta + 0.5 * (batch.positions[:, 1:] ** 2).sum(1)
        return torch.zeros(batch.n_structures, dtype=atom.dtype).index_add(0, batch.structure_index, atom)


def test_double_well_force_is_recovered():
    a = 0.05  # barrier height in eV (about 2 k_B T at 300 K)

    def true_u(x):
        return a * (x**2 - 1.0) ** 2

    grid = np.linspace(-2.2, 2.2, 200001)
    density = np.exp(-BETA * true_u(grid))
    cdf = np.cumsum(density)
    cdf /= cdf[-1]
    rng = np.random.default_rng(4)
    n = 30000
    x = np.interp(rng.random(n), cdf, grid)
    yz = rng.standard_normal((n, 2)) / np.sqrt(BETA)
    batch = AtomsBatch(
        positions=torch.as_tensor(np.column_stack([x, yz])), numbers=torch.ones(n, dtype=torch.long),
        structure_index=torch.arange(n), cell=torch.zeros(n, 3, 3, dtype=torch.float64),
        pbc=torch.zeros(n, 3, dtype=torch.bool),
    )
    model = fit(Polynomial1D(), ScoreMatching("ism", TEMPERATURE), batch)
    xs = torch.linspace(-1.5, 1.5, 61, dtype=torch.float64)
    powers = torch.stack([p * xs ** (p - 1) for p in range(1, 7)], dim=1)
    learned_force = -(powers @ model.theta.detach())
    true_force = -4 * a * xs * (xs**2 - 1)
    error = torch.sqrt(((learned_force - true_force) ** 2).mean()) / torch.sqrt((true_force**2).mean())
    assert float(error) < 0.05, f"relative RMS force error {float(error):.3f}"
    assert math.isfinite(float(model.theta.sum()))


def test_dsm_learns_the_smoothed_density_at_larger_sigma():
    """At σ where smoothing matters, dsm recovers k/(1 + βkσ²): the σ-smoothed Gaussian's constant."""
    k, sigma = np.array([2.0, 8.0, 30.0]), 0.02
    model = fit(HarmonicWell(), ScoreMatching("dsm", TEMPERATURE, sigma=[sigma]), gaussian_batch(k, 40000, seed=5))
    np.testing.assert_allclose(torch.exp(model.log_k).detach().numpy(), k / (1 + BETA * k * sigma**2), rtol=0.03)


def test_antithetic_dsm_in_one_call_equals_the_two_noisy_evaluations():
    """x + σε and x − σε go through the model as one batch of twice the size; the value and its
    parameter gradient are those of two separate evaluations with the same ε."""
    from ase.build import molecule

    from boltzmatch.models import build_model
    from boltzmatch.models.base import energy_and_forces

    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "dtype": "float64"})
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH"), molecule("H2O"), molecule("CH4")], dtype=torch.float64)
    sigma = [0.02, 0.05]
    objective = ScoreMatching("dsm", TEMPERATURE, sigma=sigma, antithetic=True)
    calls = []
    forward = model.forward
    model.forward = lambda b: calls.append(b.n_structures) or forward(b)
    torch.manual_seed(3)
    value = objective.score_term(model, batch)
    assert calls == [6]  # one call, twice the batch
    (grad,) = torch.autograd.grad(value.sum(), model.interactions[0].filter[0].weight)

    model.forward = forward
    torch.manual_seed(3)  # the same draws: which σ per structure, then ε
    pick = torch.randint(len(sigma), (batch.n_structures,))
    noise = torch.randn_like(batch.positions)
    s = torch.as_tensor(sigma, dtype=torch.float64)[pick][batch.structure_index][:, None]
    expected = torch.zeros(batch.n_structures, dtype=torch.float64)
    for eps in (noise, -noise):
        _, forces = energy_and_forces(model, batch.with_positions(batch.positions + s * eps), create_graph=True)
        per_atom = 0.5 * ((s * BETA * forces + eps) ** 2).sum(1)
        expected = expected + 0.5 * torch.zeros(3, dtype=torch.float64).index_add(0, batch.structure_index, per_atom)
    (expected_grad,) = torch.autograd.grad(expected.sum(), model.interactions[0].filter[0].weight)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_huber_fisher_equals_fisher_while_residuals_are_below_delta():
    k = [2.0, 8.0, 30.0]
    batch = labelled_gaussian_batch(k, 500, seed=2)
    model = HarmonicWell()
    with torch.no_grad():
        model.log_k.copy_(torch.log(torch.tensor(k)) + 0.01)  # residuals ≈ 1% of the forces
    largest = float((batch.forces + torch.exp(model.log_k.detach()) * batch.positions).abs().max())
    plain = ScoreMatching("fisher", TEMPERATURE).score_term(model, batch)
    huber = ScoreMatching("fisher", TEMPERATURE, huber_delta=1.01 * largest).score_term(model, batch)
    torch.testing.assert_close(huber, plain, rtol=1e-14, atol=0)


def test_huber_fisher_weighs_residuals_beyond_delta_linearly():
    batch = gaussian_batch([5.0] * 3, 3, seed=3)
    batch.forces = torch.tensor([[0.1, -0.2, 0.0], [3.0, 0.0, -0.5], [0.0, 0.0, 10.0]], dtype=torch.float64)
    zero = HarmonicWell()
    with torch.no_grad():
        zero.log_k.fill_(-1e3)  # k = 0: the model's forces vanish, the residuals are the forces
    delta = 0.5
    term = ScoreMatching("fisher", TEMPERATURE, huber_delta=delta).score_term(zero, batch)
    r = batch.forces.abs()
    expected = BETA**2 * torch.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)).sum(1)
    torch.testing.assert_close(term, expected, rtol=1e-14, atol=0)


def test_huber_fisher_fits_the_force_constant_despite_outlying_frames():
    """2% of the frames carry forces 30× too large (like labels where a model had a spurious well):
    the plain Fisher divergence is a least-squares fit and the force constant comes out ~60% too large;
    with a Huber δ of 0.5 eV/Å (the typical force here is 0.5 eV/Å) it stays within 3%."""
    k = 8.0
    batch = gaussian_batch([k] * 3, 5000, seed=4)
    forces = -k * batch.positions
    forces[:100] *= 30.0
    batch.forces = forces
    fitted = {}
    for name, delta in (("plain", None), ("huber", 0.5)):
        model = HarmonicWell(n_axes=1)
        fit(model, ScoreMatching("fisher", TEMPERATURE, huber_delta=delta), batch)
        fitted[name] = float(torch.exp(model.log_k.detach()))
    assert fitted["plain"] > 1.4 * k
    assert fitted["huber"] == pytest.approx(k, rel=0.03)


@pytest.mark.parametrize("kind, delta", [("ism", 0.5), ("fisher", 0.0), ("fisher", -1.0)])
def test_huber_delta_is_positive_and_for_fisher_only(kind, delta):
    from boltzmatch.errors import BoltzmatchError

    with pytest.raises(BoltzmatchError, match="huber-delta"):
        make_objective(kind, temperature=TEMPERATURE, energy_weight=0, force_weight=0, huber_delta=delta)


def test_fisher_with_supervised_terms_evaluates_the_model_once():
    """The Fisher term and the energy and force terms mixed in share one evaluation (it was one each): the same
    loss and gradient as the terms computed apart."""
    k = [1.0, 2.0, 4.0]
    batch = labelled_gaussian_batch(k, 32, seed=5)
    batch.energy = torch.full((batch.n_structures,), 0.01, dtype=torch.float64)
    objective = make_objective("fisher", temperature=TEMPERATURE, energy_weight=1.0, force_weight=10.0)
    model = HarmonicWell()
    with torch.no_grad():
        model.log_k.copy_(torch.tensor([0.1, 0.5, 1.0]))
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    loss, metrics = objective(model, batch)
    assert len(calls) == 1
    (grad,) = torch.autograd.grad(loss, model.log_k)
    apart = objective.score_term(model, batch).mean() + objective.supervised(model, batch)[0]
    (grad_apart,) = torch.autograd.grad(apart, model.log_k)
    assert loss.item() == pytest.approx(apart.item(), rel=1e-12)
    torch.testing.assert_close(grad, grad_apart, rtol=1e-12, atol=0)
    assert set(metrics) == {"fisher_loss", "energy_loss", "force_loss"}
