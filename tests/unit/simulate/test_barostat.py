"""Stochastic cell rescaling against answers known in closed form: the isothermal–isobaric volume distribution of
non-interacting atoms, V ~ Gamma(N + 1, kT/P), shifted by a model whose energy is linear in the volume."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms, units

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.models.base import energy_forces_and_stress
from boltzmatch.models.neighbors import find_pairs
from boltzmatch.simulate.barostat import CellRescaling, instantaneous_pressure
from boltzmatch.simulate.forces import ModelForces
from boltzmatch.simulate.integrators import Langevin, MDState, make_integrator, maxwell_boltzmann, update_forces
from boltzmatch.units import GPA_PER_EV_A3

N_ATOMS, TEMPERATURE = 4, 300.0
KT = units.kB * TEMPERATURE


class VolumeEnergy(torch.nn.Module):
    """U = c · V per structure (eV, c in eV/Å³): its stress is c·I, so its pressure is −c at every volume."""

    def __init__(self, c: float):
        super().__init__()
        self.c = torch.nn.Parameter(torch.tensor(float(c), dtype=torch.float64))

    def forward(self, batch: AtomsBatch) -> torch.Tensor:
        volume = torch.linalg.det(batch.cell).abs()
        per_atom = torch.zeros(batch.n_structures, dtype=batch.positions.dtype).index_add_(
            0, batch.structure_index, 0.0 * batch.positions.sum(-1))
        return self.c * volume + per_atom


def _state(replicas: int, volume: float, generator: torch.Generator) -> MDState:
    side = volume ** (1.0 / 3.0)
    n = replicas * N_ATOMS
    index = torch.arange(replicas).repeat_interleave(N_ATOMS)
    masses = torch.full((n, 1), 4.0, dtype=torch.float64)
    kT = torch.full((replicas,), KT, dtype=torch.float64)
    state = MDState(positions=torch.rand(n, 3, generator=generator, dtype=torch.float64) * side,
                    velocities=torch.zeros(n, 3, dtype=torch.float64), forces=torch.zeros(n, 3, dtype=torch.float64),
                    energy=torch.zeros(replicas, dtype=torch.float64), masses=masses, structure_index=index, kT=kT,
                    dof=torch.full((replicas,), 3.0 * N_ATOMS, dtype=torch.float64),
                    cell=torch.eye(3, dtype=torch.float64).repeat(replicas, 1, 1) * side,
                    stress=torch.zeros(replicas, 3, 3, dtype=torch.float64))
    state.velocities = maxwell_boltzmann(masses[:, 0], kT[index], generator)
    return state


class _GasForces:
    """Forces of ``VolumeEnergy`` without a model: zero forces, stress c·I."""

    def __init__(self, c: float):
        self.c = c

    def __call__(self, positions):
        raise AssertionError("a barostat's run asks for the stress")

    def with_stress(self, positions, cell):
        n = len(cell)
        return (self.c * torch.linalg.det(cell), torch.zeros_like(positions),
                self.c * torch.eye(3, dtype=cell.dtype).repeat(n, 1, 1))


def _volumes(c: float, pressure_gpa: float, *, replicas=256, steps=3000, burn=1000, seed=0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    mean = (N_ATOMS + 1) * KT / (pressure_gpa / GPA_PER_EV_A3 + c)
    state = _state(replicas, mean, generator)
    # the compressibility of an ideal gas is 1/P: with β_T near it the volume relaxes in about τ_p
    barostat = CellRescaling(pressure_gpa, tau=200.0, compressibility=1.0 / pressure_gpa, generator=generator)
    integ = Langevin(4.0, friction=0.02, generator=generator, barostat=barostat)
    forces = _GasForces(c)
    update_forces(state, forces)
    volumes = []
    for step in range(steps):
        integ.step(state, forces)
        if step >= burn and step % 5 == 0:
            volumes.append(state.volume().numpy().copy())
    return np.concatenate(volumes)


@pytest.mark.parametrize("c_over_p", [0.0, -0.5])
def test_volume_of_an_ideal_gas_follows_the_npt_distribution(c_over_p):
    pressure = 0.02  # GPa
    c = c_over_p * pressure / GPA_PER_EV_A3  # eV/Å³; −P/2 halves the pressure the gas must hold, doubling V
    volumes = _volumes(c, pressure)
    scale = KT / (pressure / GPA_PER_EV_A3 + c)  # Å³: V ~ Gamma(N + 1, scale)
    assert volumes.mean() == pytest.approx((N_ATOMS + 1) * scale, rel=0.03)
    assert volumes.var() == pytest.approx((N_ATOMS + 1) * scale**2, rel=0.10)
    # the shape too: the fraction below the Gamma distribution's median-ish point
    from scipy import stats

    expected = stats.gamma(N_ATOMS + 1, scale=scale)
    for q in (0.1, 0.5, 0.9):
        assert np.mean(volumes < expected.ppf(q)) == pytest.approx(q, abs=0.03)


def test_without_a_pressure_difference_nothing_drifts_and_the_scaling_keeps_fractional_positions():
    generator = torch.Generator().manual_seed(3)
    state = _state(2, 500.0, generator)
    fractional = torch.linalg.solve(state.cell[state.structure_index].transpose(1, 2), state.positions[..., None])
    barostat = CellRescaling(0.1, generator=generator)
    momentum = state.masses * state.velocities
    barostat.rescale(state, 1.0 * units.fs)
    after = torch.linalg.solve(state.cell[state.structure_index].transpose(1, 2), state.positions[..., None])
    assert torch.allclose(after, fractional, atol=1e-12)
    ratio = (state.masses * state.velocities / momentum)
    scale = (state.volume() / 500.0) ** (-1.0 / 3.0)
    assert torch.allclose(ratio, scale[state.structure_index][:, None].expand_as(ratio), rtol=1e-10)


def test_pressure_is_kinetic_minus_the_trace_of_the_stress():
    generator = torch.Generator().manual_seed(1)
    state = _state(3, 400.0, generator)
    state.stress = torch.diag_embed(torch.tensor([[0.01, 0.02, 0.03]] * 3, dtype=torch.float64))
    expected = 2 * state.kinetic_energy() / (3 * 400.0) - 0.02
    assert torch.allclose(instantaneous_pressure(state), expected, rtol=1e-10)


def test_model_forces_give_the_stress_of_a_fresh_evaluation_in_scaled_cells_without_a_search():
    """MD's candidate pairs stay valid in a cell scaled alike in every direction: the stress and forces equal a
    fresh search's, and no search runs for a scaling within the skin."""
    from boltzmatch.models.schnet import SchNet

    torch.manual_seed(0)
    atoms = Atoms("Cu4", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                  cell=[3.6] * 3, pbc=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    model = SchNet(elements=[29], cutoff=4.0, n_features=16, n_interactions=2).double()
    batch = AtomsBatch.from_atoms([atoms], dtype=torch.float64)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc, exact_filters=True)
    forces.with_stress(batch.positions, batch.cell)
    assert forces.searches == 1
    scale = 1.01
    energy, force, stress = forces.with_stress(batch.positions * scale, batch.cell * scale)
    assert forces.searches == 1  # 1 % of 7 Å moves atoms 0.07 Å: within half the 1 Å skin
    fresh = AtomsBatch.from_atoms([atoms], dtype=torch.float64)
    fresh.positions, fresh.cell = fresh.positions * scale, fresh.cell * scale
    fresh.pairs = find_pairs(fresh, 4.0)
    with torch.enable_grad():
        e_ref, f_ref, s_ref = energy_forces_and_stress(model, fresh)
    assert torch.allclose(energy, e_ref.detach(), atol=1e-10)
    assert torch.allclose(force, f_ref.detach(), atol=1e-10)
    assert torch.allclose(stress, s_ref.detach(), atol=1e-10)
    forces.with_stress(batch.positions * 1.2, batch.cell * 1.2)  # expanded, the pairs within 4 Å are fewer
    assert forces.searches == 1
    forces.with_stress(batch.positions * 0.75, batch.cell * 0.75)  # 4 Å there is 5.3 Å at the search: a new one
    assert forces.searches == 2


def test_a_float32_model_keeps_its_pairs_in_a_scaled_cell():
    """The barostat's float64 cells reach a float32 model rounded: still the search's cell scaled, so no search."""
    from boltzmatch.models.schnet import SchNet

    atoms = Atoms("Cu4", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                  cell=[3.6] * 3, pbc=True).repeat(2)
    batch = AtomsBatch.from_atoms([atoms], dtype=torch.float64)
    forces = ModelForces(SchNet(elements=[29], cutoff=4.0, n_features=16, n_interactions=2), batch.numbers,
                         batch.structure_index, batch.cell, batch.pbc)
    for scale in (1.0, 1.0 + 1e-7, 1.003, 0.997, 1.0041):
        forces.with_stress(batch.positions * scale, batch.cell * scale)
    assert forces.searches == 1


def test_make_integrator_refuses_a_barostat_outside_langevin():
    with pytest.raises(ValueError, match="Langevin"):
        make_integrator("verlet", 1.0, barostat=CellRescaling(0.0))
    assert math.isfinite(CellRescaling(0.0).pressure)
