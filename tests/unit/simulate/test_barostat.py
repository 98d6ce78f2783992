"""Stochastic cell rescaling against answers known in closed form: the isothermal–isobaric volume distribution of
non-interacting atoms, V ~ Gamma(N + 1, kT/P), shifted by a model whose energy is linear in the volume, under every
coupling; and, with the axes apart, a cell shape held by a harmonic energy in its log-length ratios."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms, units

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.models.base import energy_forces_and_stress
from boltzmatch.models.neighbors import find_pairs
from boltzmatch.simulate.barostat import COUPLINGS, CellRescaling, instantaneous_pressure, pressure_diagonal
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


class _ShapeForces:
    """Non-interacting atoms in a box whose energy holds its shape: U = (k/2)[ln(L_x/L_y)² + ln(L_y/L_z)²] (eV,
    orthorhombic cells), so σ_αα = (1/V) ∂U/∂ln L_α."""

    def __init__(self, k: float):
        self.k = k

    def __call__(self, positions):
        raise AssertionError("a barostat's run asks for the stress")

    def with_stress(self, positions, cell):
        lengths = torch.log(cell.diagonal(dim1=1, dim2=2))
        d1, d2 = lengths[:, 0] - lengths[:, 1], lengths[:, 1] - lengths[:, 2]
        derivative = self.k * torch.stack([d1, d2 - d1, -d2], dim=1)
        return (0.5 * self.k * (d1**2 + d2**2), torch.zeros_like(positions),
                torch.diag_embed(derivative / torch.linalg.det(cell)[:, None]))


def _run(forces, pressure_gpa: float, mean_volume: float, *, coupling="isotropic", tau=200.0, replicas=256,
         steps=3000, burn=1000, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Volumes and cell lengths (n, 3) sampled every 5 steps after ``burn``, starting from cubes."""
    generator = torch.Generator().manual_seed(seed)
    state = _state(replicas, mean_volume, generator)
    # the compressibility of an ideal gas is 1/P: with β_T near it the volume relaxes in about τ_p
    barostat = CellRescaling(pressure_gpa, tau=tau, compressibility=1.0 / pressure_gpa, coupling=coupling,
                             generator=generator)
    integ = Langevin(4.0, friction=0.02, generator=generator, barostat=barostat)
    update_forces(state, forces)
    volumes, lengths = [], []
    for step in range(steps):
        integ.step(state, forces)
        if step >= burn and step % 5 == 0:
            volumes.append(state.volume().numpy().copy())
            lengths.append(state.cell.diagonal(dim1=1, dim2=2).numpy().copy())
    return np.concatenate(volumes), np.concatenate(lengths)


def _volumes(c: float, pressure_gpa: float, coupling: str = "isotropic") -> np.ndarray:
    mean = (N_ATOMS + 1) * KT / (pressure_gpa / GPA_PER_EV_A3 + c)
    return _run(_GasForces(c), pressure_gpa, mean, coupling=coupling)[0]


@pytest.mark.parametrize(("c_over_p", "coupling"), [(0.0, "isotropic"), (-0.5, "isotropic"),
                                                   (0.0, "semiisotropic"), (-0.5, "anisotropic")])
def test_volume_of_an_ideal_gas_follows_the_npt_distribution(c_over_p, coupling):
    """Whichever axes scale together, the volume of non-interacting atoms is Gamma(N + 1, kT/P) distributed (the
    shape of their box is free: with the axes apart it wanders, and the volume does not care)."""
    pressure = 0.02  # GPa
    c = c_over_p * pressure / GPA_PER_EV_A3  # eV/Å³; −P/2 halves the pressure the gas must hold, doubling V
    volumes = _volumes(c, pressure, coupling)
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


@pytest.mark.parametrize("coupling", ["semiisotropic", "anisotropic"])
def test_a_shape_held_by_a_harmonic_energy_fluctuates_as_its_boltzmann_distribution(coupling):
    """U = (k/2)[d₁² + d₂²] with d₁ = ln(L_x/L_y), d₂ = ln(L_y/L_z): with each axis alone, d₁ and d₂ are independent
    normals of variance kT/k, and the volume stays Gamma(N + 1, kT/P); with x and y together, d₁ stays 0 and d₂ is
    that normal. The isotropic coupling keeps the starting cube."""
    pressure, k = 0.02, KT / 0.09  # GPa; eV: sd 0.3 in each log-ratio
    scale = KT / (pressure / GPA_PER_EV_A3)
    volumes, lengths = _run(_ShapeForces(k), pressure, (N_ATOMS + 1) * scale, coupling=coupling, tau=2000.0,
                            steps=4000)
    d1, d2 = np.log(lengths[:, 0] / lengths[:, 1]), np.log(lengths[:, 1] / lengths[:, 2])
    assert volumes.mean() == pytest.approx((N_ATOMS + 1) * scale, rel=0.04)
    assert d2.mean() == pytest.approx(0.0, abs=0.02) and d2.var() == pytest.approx(0.09, rel=0.1)
    if coupling == "anisotropic":
        assert d1.mean() == pytest.approx(0.0, abs=0.02) and d1.var() == pytest.approx(0.09, rel=0.1)
        assert abs(np.corrcoef(d1, d2)[0, 1]) < 0.05
        assert abs(np.corrcoef(d1, np.log(volumes))[0, 1]) < 0.05
    else:
        assert np.abs(d1).max() < 1e-12
    _, cube = _run(_ShapeForces(k), pressure, (N_ATOMS + 1) * scale, steps=200, burn=0, replicas=4)
    assert np.abs(np.log(cube[:, 0] / cube[:, 2])).max() < 1e-12


def test_anisotropic_scaling_keeps_fractional_positions_and_scales_momenta_per_axis():
    generator = torch.Generator().manual_seed(5)
    state = _state(3, 500.0, generator)
    state.stress = torch.diag_embed(torch.tensor([[0.002, -0.001, 0.0]] * 3, dtype=torch.float64))
    fractional = torch.linalg.solve(state.cell[state.structure_index].transpose(1, 2), state.positions[..., None])
    momentum = state.masses * state.velocities
    cell = state.cell.clone()
    CellRescaling(0.0, coupling="anisotropic", generator=generator).rescale(state, 5.0 * units.fs)
    after = torch.linalg.solve(state.cell[state.structure_index].transpose(1, 2), state.positions[..., None])
    assert torch.allclose(after, fractional, atol=1e-12)
    scale = state.cell.diagonal(dim1=1, dim2=2) / cell.diagonal(dim1=1, dim2=2)
    assert not torch.allclose(scale[:, 0], scale[:, 1])  # the axes moved apart
    assert torch.allclose(state.cell, torch.diag_embed(cell.diagonal(dim1=1, dim2=2) * scale), atol=0)
    assert torch.allclose(state.masses * state.velocities * scale[state.structure_index], momentum, rtol=1e-12)


def test_pressure_is_kinetic_minus_the_trace_of_the_stress():
    generator = torch.Generator().manual_seed(1)
    state = _state(3, 400.0, generator)
    state.stress = torch.diag_embed(torch.tensor([[0.01, 0.02, 0.03]] * 3, dtype=torch.float64))
    expected = 2 * state.kinetic_energy() / (3 * 400.0) - 0.02
    assert torch.allclose(instantaneous_pressure(state), expected, rtol=1e-10)
    diagonal = pressure_diagonal(state)  # Σ m v²_α / V − σ_αα: the tensor's diagonal, whose mean is the pressure
    assert torch.allclose(diagonal.mean(-1), expected, rtol=1e-10)
    kinetic_x = state.per_structure(state.masses[:, 0] * state.velocities[:, 0] ** 2) / 400.0
    assert torch.allclose(diagonal[:, 0], kinetic_x - 0.01, rtol=1e-12)


@pytest.mark.parametrize(("scale", "squeeze"), [(1.01, 0.75), ([1.012, 0.994, 1.0], [1.0, 1.0, 0.75])],
                         ids=["alike", "per-axis"])
def test_model_forces_give_the_stress_of_a_fresh_evaluation_in_scaled_cells_without_a_search(scale, squeeze):
    """MD's candidate pairs stay valid in a cell scaled alike in every direction (isotropic barostat) or by its own
    factor along each axis (anisotropic): the stress and forces equal a fresh search's, and no search runs for a
    scaling within the skin. Compression beyond it, or a shear, searches again."""
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
    scale, squeeze = (torch.tensor(x, dtype=torch.float64) for x in (scale, squeeze))
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
    forces.with_stress(batch.positions * squeeze, batch.cell * squeeze)  # 4 Å there is 5.3 Å at the search
    assert forces.searches == 2
    sheared = batch.cell.clone()
    sheared[0, 0, 1] = 0.1  # not a scaling of the axes: a new search, however small
    forces.with_stress(batch.positions, sheared)
    assert forces.searches == 3


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
    with pytest.raises(ValueError, match="coupling"):
        CellRescaling(0.0, coupling="triclinic")
    assert set(COUPLINGS) == {"isotropic", "semiisotropic", "anisotropic"}


def test_thermo_of_a_run_from_before_the_cell_lengths_resumes_with_its_own_columns(tmp_path):
    """A checkpointed NPT run whose thermo.csv has only the volume and pressure columns goes on writing those two:
    the file keeps one row shape."""
    from boltzmatch.simulate.output import BAROSTAT_COLUMNS, THERMO_COLUMNS, ThermoLog, read_thermo

    path = tmp_path / "thermo.csv"
    path.write_text(",".join(THERMO_COLUMNS + BAROSTAT_COLUMNS[:2]) + "\n0,0.0,0,300.0,1,2,3,3,10.0,0.1\n")
    log = ThermoLog(path, offset=path.stat().st_size, barostat=True)
    log.write([(10, 0.01, 0, 301.0, 1, 2, 3, 3, 10.5, 0.2, 2.0, 2.1, 2.5)])
    log.close()
    thermo = read_thermo(path)
    assert list(thermo) == [*THERMO_COLUMNS, "volume_A3", "pressure_GPa"] and thermo["volume_A3"].tolist() == [10, 10.5]
    fresh = ThermoLog(tmp_path / "new.csv", barostat=True)
    fresh.write([(0, 0.0, 0, 300.0, 1, 2, 3, 3, 10.0, 0.1, 2.0, 2.1, 2.5)])
    fresh.close()
    assert read_thermo(tmp_path / "new.csv")["c_A"].tolist() == [2.5]
