"""Closed-form fits of the linear potential against iterative optima and Stein's identity.

Data: a harmonic diatomic U = ½k(r − r₀)² sampled exactly from its Boltzmann distribution
(p(r) ∝ r² e^{−βU(r)} by inverse CDF, uniform directions), with exact energies and forces.
"""

import numpy as np
import pytest
import torch
from ase import units

from boltzmatch.data import make_structure
from boltzmatch.data.packed import PackedStructures
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model, energy_and_forces
from boltzmatch.objectives import ScoreMatching, SupervisedLoss
from boltzmatch.training import fit_closed_form
from boltzmatch.training.closed_form import RIDGE_GRID, RidgePath

TEMPERATURE = 500.0
BETA = 1.0 / (units.kB * TEMPERATURE)
K_BOND, R0 = 20.0, 1.1  # eV/Å², Å


def diatomics(n, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.4, 2.0, 100001)
    density = grid**2 * np.exp(-BETA * 0.5 * K_BOND * (grid - R0) ** 2)
    cdf = np.cumsum(density)
    r = np.interp(rng.random(n), cdf / cdf[-1], grid)
    u = rng.standard_normal((n, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    out = []
    for ri, ui in zip(r, u):
        f2 = -K_BOND * (ri - R0) * ui
        out.append(make_structure([6, 8], np.stack([-0.5 * ri * ui, 0.5 * ri * ui]),
                                  energy=0.5 * K_BOND * (ri - R0) ** 2 - 3.0, forces=np.stack([-f2, f2])))
    return out


@pytest.fixture(scope="module")
def data():
    return PackedStructures(diatomics(2000), dtype=torch.float64)


def linear_model():
    return build_model({"name": "linear", "elements": [6, 8], "n_rbf": 4, "cutoff": 2.5, "dtype": "float64"})


def full_batch(data):
    return data.batch(np.arange(len(data)))


def lbfgs(model, objective, batch):
    optimizer = torch.optim.LBFGS([model.theta], lr=1, max_iter=500, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-14, tolerance_change=1e-16, history_size=50)

    def closure():
        optimizer.zero_grad()
        loss, _ = objective(model, batch)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(objective(model, batch)[0].detach())


@pytest.mark.parametrize("name", ["energy", "fisher", "ism"])
def test_closed_form_equals_iterative_optimum(data, name):
    """(Energies alone cannot split the C and O offsets of a diatomic: the system is singular in
    that one direction, which changes no prediction; lstsq takes the minimum-norm solution.)"""
    closed = linear_model()
    fit_closed_form(closed, data, np.arange(len(data)), objective=name, temperature=TEMPERATURE)
    batch = full_batch(data)
    objective = (SupervisedLoss("energy", 1.0, 0.0) if name == "energy"
                 else ScoreMatching(name, TEMPERATURE))
    closed_loss = float(objective(closed, batch)[0].detach())
    iterative = linear_model()
    iterative_loss = lbfgs(iterative, objective, batch)
    # the closed form is the minimiser: no iterative run beats it, and L-BFGS reaches it
    assert closed_loss <= iterative_loss + 1e-9 * abs(iterative_loss)
    assert iterative_loss == pytest.approx(closed_loss, rel=1e-5, abs=1e-8)
    # what the objective determines agrees: energies for the energy fit, forces for the score fits
    e_closed, f_closed = energy_and_forces(closed, batch)
    e_iter, f_iter = energy_and_forces(iterative, batch)
    if name == "energy":
        # ill-conditioned in θ (overlapping Gaussians), so L-BFGS gets close in loss sooner than in θ
        assert float((e_closed - e_iter).detach().abs().max()) < 0.1 * float(batch.energy.std())
    else:
        assert float((f_closed - f_iter).detach().abs().max()) < 1e-3 * float(f_closed.detach().abs().mean())


def test_fisher_closed_form_recovers_the_bond_force(data):
    model = linear_model()
    fit_closed_form(model, data, np.arange(len(data)), objective="fisher", temperature=TEMPERATURE)
    batch = full_batch(data)
    _, forces = energy_and_forces(model, batch)
    error = float(((forces - batch.forces) ** 2).mean().sqrt() / (batch.forces**2).mean().sqrt())
    assert error < 0.02


def test_ism_minus_fisher_is_constant_in_theta(data):
    """E_p[ism] − E_p[fisher] does not depend on θ (integration by parts), up to sampling error."""
    batch = full_batch(data)
    model = linear_model()
    fit_closed_form(model, data, np.arange(len(data)), objective="fisher", temperature=TEMPERATURE)
    optimum = model.theta.detach().clone()
    ism, fisher = ScoreMatching("ism", TEMPERATURE), ScoreMatching("fisher", TEMPERATURE)
    rng = torch.Generator().manual_seed(0)
    differences, fishers = [], []
    for _ in range(12):
        with torch.no_grad():
            model.theta.copy_(optimum * (1 + 0.3 * torch.randn(optimum.shape, generator=rng, dtype=torch.float64)))
        differences.append(float(ism(model, batch)[0].detach()) - float(fisher(model, batch)[0].detach()))
        fishers.append(float(fisher(model, batch)[0].detach()))
    assert np.std(differences) < 0.02 * np.std(fishers)


def test_near_duplicate_columns_are_solved_stably_by_default(data):
    """40 Gaussians on 2.5 Å overlap so much that the columns are numerically dependent
    (condition number of the normal equations ≈ 1e22). The plain solve that was the default
    returned forces far from the bond force; the scaled, rank-revealing solve with the ridge picked
    on validation frames recovers it."""
    model = build_model({"name": "linear", "elements": [6, 8], "n_rbf": 40, "cutoff": 2.5, "dtype": "float64"})
    info = fit_closed_form(model, data, np.arange(200), objective="fisher", temperature=TEMPERATURE,
                           val_indices=np.arange(200, 400))
    assert info["rank"] < info["n_parameters"] and info["ridge"] in RIDGE_GRID
    batch = data.batch(np.arange(400, 2000))
    _, forces = energy_and_forces(model, batch)
    error = float(((forces - batch.forces) ** 2).mean().sqrt() / (batch.forces**2).mean().sqrt())
    assert error < 0.05
    # the chosen ridge is the one with the lowest validation objective
    assert info["val_objective"][f"{info['ridge']:.0e}"] == min(info["val_objective"].values())


def test_ridge_path_equals_a_direct_solve():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6)) * np.array([1e3, 1, 1e-2, 1, 1, 1])
    A = torch.tensor(X.T @ X)
    b = torch.tensor(X.T @ rng.standard_normal(50))
    offsets = torch.tensor([5])
    path = RidgePath(A, b, offsets, eliminate_offsets=True)
    gram = X.T @ X
    schur = gram[:5, :5] - np.outer(gram[:5, 5], gram[5, :5]) / gram[5, 5]  # offsets eliminated exactly
    for lam in (0.0, 1e-3):
        penalty = np.diag(np.r_[lam * np.diag(schur), 0.0])  # relative to the unit diagonal; offsets free
        expected = np.linalg.solve(X.T @ X + penalty, b.numpy())
        np.testing.assert_allclose(path.solve(lam).numpy(), expected, rtol=1e-8, atol=1e-10)


def test_bad_ridge_is_refused(data):
    with pytest.raises(BoltzmatchError, match="ridge must be"):
        fit_closed_form(linear_model(), data, np.arange(10), objective="fisher", temperature=TEMPERATURE, ridge=-1)
