"""Tabulated radial filters: cubic Hermite error of known functions, and SchNet's MD view against the exact model."""

import math

import pytest
import torch
from ase.build import bulk, molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model
from boltzmatch.models.base import energy_and_forces
from boltzmatch.models.filter_table import FilterTable
from boltzmatch.models.radial import cosine_cutoff
from boltzmatch.simulate import ModelForces

CUTOFF = 4.0


def _known(r: torch.Tensor) -> torch.Tensor:
    """Two smooth columns that vanish with their slope at the cutoff."""
    fc = cosine_cutoff(r, CUTOFF)
    return torch.stack([torch.sin(2.0 * r) * fc, torch.exp(-((r - 1.5) ** 2) / 0.2) * fc], 1)


def _known_slope(r: torch.Tensor) -> torch.Tensor:
    r = r.detach().clone().requires_grad_(True)
    values = _known(r)
    return torch.stack([torch.autograd.grad(values[:, c].sum(), r, retain_graph=True)[0] for c in range(2)], 1)


def _errors(spacing: float) -> tuple[float, float]:
    table = FilterTable(_known, CUTOFF, spacing=spacing, dtype=torch.float64)
    r = torch.linspace(0.0, CUTOFF - 1e-9, 7919, dtype=torch.float64).requires_grad_(True)
    values = table(r)
    slopes = torch.stack([torch.autograd.grad(values[:, c].sum(), r, retain_graph=True)[0] for c in range(2)], 1)
    return (float((values.detach() - _known(r.detach())).abs().max()),
            float((slopes - _known_slope(r.detach())).abs().max()))


def test_hermite_table_is_fourth_order_in_values_and_third_order_in_slopes():
    (v1, s1), (v2, s2) = _errors(0.04), _errors(0.02)
    assert v1 < 1e-5 and s1 < 1e-3
    assert 12 < v1 / v2 < 20  # h⁴: 16 when the spacing halves
    assert 6 < s1 / s2 < 10  # h³: 8


def test_table_is_exact_at_its_nodes_and_zero_beyond_the_cutoff():
    table = FilterTable(_known, CUTOFF, spacing=0.05, dtype=torch.float64)
    nodes = torch.arange(0, 80, dtype=torch.float64) * 0.05
    assert torch.allclose(table(nodes), _known(nodes), atol=1e-12)
    r = torch.tensor([CUTOFF, CUTOFF + 0.3, 9.0], dtype=torch.float64, requires_grad=True)
    values = table(r)
    (grad,) = torch.autograd.grad(values.sum(), r)
    assert torch.equal(values, torch.zeros_like(values)) and torch.equal(grad, torch.zeros_like(grad))


def _batch(dtype):
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=2)
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.1, seed=1)
    return AtomsBatch.from_atoms([ethanol, molecule("C6H6"), crystal], dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_schnet_md_view_gives_the_exact_models_energies_and_forces(dtype):
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "cutoff": CUTOFF, "n_features": 32, "n_interactions": 2}).to(dtype)
    batch = _batch(dtype)
    exact_energy, exact_forces = energy_and_forces(model, batch)
    view = model.for_md()
    energy, forces = energy_and_forces(view, batch)
    tolerance = 2e-6 if dtype == torch.float64 else 5e-5  # eV/Å; float32's own rounding is ~1e-5
    scale = float(exact_forces.abs().max())
    assert scale > 0.1
    assert float((forces - exact_forces).abs().max()) < tolerance * max(1.0, scale)
    assert float((energy - exact_energy).abs().max()) < 10 * tolerance * max(1.0, float(exact_energy.abs().max()))


def test_md_view_leaves_the_model_exact_and_refuses_second_derivatives():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "cutoff": CUTOFF, "n_features": 16, "n_interactions": 1}).double()
    view = model.for_md()
    assert model._filter_table is None and view._filter_table is not None
    assert view.embedding is model.embedding  # weights shared, not copied
    batch = _batch(torch.float64)
    positions = batch.positions.clone().requires_grad_(True)
    _, forces = energy_and_forces(model, batch.with_positions(positions), create_graph=True)
    torch.autograd.grad(forces.sum(), positions)  # the model itself stays twice differentiable
    energy_and_forces(view, batch.with_positions(positions))  # forces: fine
    with pytest.raises(RuntimeError, match="first derivatives only"):
        energy_and_forces(view, batch.with_positions(positions), create_graph=True)


def test_model_forces_tabulate_by_default_and_evaluate_exactly_on_request():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "cutoff": CUTOFF, "n_features": 16, "n_interactions": 2}).double()
    batch = _batch(torch.float64)
    args = (batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    tabulated, exact = ModelForces(model, *args), ModelForces(model, *args, exact_filters=True)
    assert tabulated.filters.startswith("tabulated") and exact.filters == "exact"
    energy_t, forces_t = tabulated(batch.positions)
    energy_e, forces_e = exact(batch.positions)
    assert not torch.equal(forces_t, forces_e)  # the table is in use
    assert torch.allclose(forces_t, forces_e, atol=2e-6 * max(1.0, float(forces_e.abs().max())))
    assert math.isclose(float(energy_t.sum()), float(energy_e.sum()), abs_tol=1e-5)


def _nve_energy_spread(forces: ModelForces, positions: torch.Tensor, masses: torch.Tensor, steps: int) -> float:
    """Max − min of the total energy (eV) over velocity Verlet steps of 0.25 fs, from rest."""
    from ase import units

    dt = 0.25 * units.fs
    velocities = torch.zeros_like(positions)
    energy, f = forces(positions)
    totals = []
    for _ in range(steps):
        velocities = velocities + 0.5 * dt * f / masses[:, None]
        positions = positions + dt * velocities
        energy, f = forces(positions)
        velocities = velocities + 0.5 * dt * f / masses[:, None]
        totals.append(float(energy.sum() + 0.5 * (masses[:, None] * velocities**2).sum()))
    return max(totals) - min(totals)


def test_nve_with_tabulated_filters_conserves_energy_as_well_as_the_exact_model():
    from ase.data import atomic_masses

    torch.manual_seed(0)
    model = build_model({"name": "schnet", "cutoff": CUTOFF, "n_features": 16, "n_interactions": 2}).double()
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.15, seed=3)  # off equilibrium: atoms move through many table intervals
    batch = AtomsBatch.from_atoms([ethanol], dtype=torch.float64)
    args = (batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    masses = torch.as_tensor(atomic_masses[batch.numbers.numpy()], dtype=torch.float64)
    exact = _nve_energy_spread(ModelForces(model, *args, exact_filters=True), batch.positions, masses, 250)
    tabulated = _nve_energy_spread(ModelForces(model, *args), batch.positions, masses, 250)
    assert exact > 0 and tabulated < 1.2 * exact + 1e-7
