"""Integrators against cases with known answers: harmonic wells (canonical averages, exact orbits,
conserved energies)."""

import math

import numpy as np
import pytest
import torch
from ase import units
from ase.data import atomic_masses

from boltzmatch.simulate.integrators import MDState, NoseHoover, make_integrator, maxwell_boltzmann, remove_drift


def harmonic_force(k):
    """One structure of harmonic atoms: energy (1,) eV and forces eV/Å."""
    def fn(positions):
        return (0.5 * k * (positions**2).sum()).reshape(1), -k * positions
    return fn


def make_state(n_structures, atoms_per_structure, temperature, k, seed=0, drift=False):
    n = n_structures * atoms_per_structure
    g = torch.Generator().manual_seed(seed)
    masses = torch.full((n, 1), atomic_masses[6], dtype=torch.float64)
    index = torch.repeat_interleave(torch.arange(n_structures), atoms_per_structure)
    kT = torch.full((n_structures,), units.kB * temperature, dtype=torch.float64)
    positions = torch.randn(n, 3, generator=g, dtype=torch.float64) * math.sqrt(units.kB * temperature / k)
    state = MDState(positions=positions, velocities=maxwell_boltzmann(masses[:, 0], kT[index], g),
                    forces=torch.zeros_like(positions), energy=torch.zeros(n_structures, dtype=torch.float64),
                    masses=masses, structure_index=index, kT=kT,
                    dof=torch.full((n_structures,), 3.0 * atoms_per_structure - (3 if drift else 0),
                                   dtype=torch.float64))
    return state


def test_langevin_samples_the_canonical_distribution_of_a_harmonic_well():
    k, temperature = 2.0, 300.0  # eV/Å², K
    state = make_state(400, 1, temperature, k)

    def force(x):
        return state.per_structure(0.5 * k * (x**2).sum(-1)), -k * x

    integ = make_integrator("langevin", 2.0, friction=0.05, generator=torch.Generator().manual_seed(1))
    state.energy, state.forces = force(state.positions)
    x2, temps = [], []
    for step in range(3000):
        integ.step(state, force)
        if step > 500 and step % 10 == 0:
            x2.append((state.positions**2).mean().item())
            temps.append(state.temperature().mean().item())
    # ⟨x²⟩ = kT/k per Cartesian component; ⟨T⟩ = T (BAOAB has no configurational bias for harmonic wells)
    assert np.mean(x2) == pytest.approx(units.kB * temperature / k, rel=0.03)
    assert np.mean(temps) == pytest.approx(temperature, rel=0.03)


def test_velocity_verlet_follows_the_exact_harmonic_orbit_and_conserves_energy():
    k, m = 1.5, atomic_masses[6]
    state = make_state(1, 1, 300.0, k)
    x0, v0 = state.positions.clone(), state.velocities.clone()
    omega = math.sqrt(k / m)  # 1/(ASE time)
    integ = make_integrator("verlet", 0.5)
    force = harmonic_force(k)
    state.energy, state.forces = force(state.positions)
    e0 = (state.energy + state.kinetic_energy()).item()
    n = 2000
    energies = []
    for _ in range(n):
        integ.step(state, force)
        energies.append((state.energy + state.kinetic_energy()).item())
    t = n * integ.dt
    exact = x0 * math.cos(omega * t) + v0 / omega * math.sin(omega * t)
    assert torch.allclose(state.positions, exact, atol=2e-3 * float(x0.abs().max() + v0.abs().max() / omega))
    assert max(abs(e - e0) for e in energies) < 1e-3 * abs(e0)


def test_nose_hoover_conserves_its_extended_energy_and_thermostats():
    # 64 replicas of 4 atoms in anharmonic wells (quartic terms couple the motion)
    temperature = 400.0

    def force(x):
        u = 0.5 * (x**2).sum(-1) + 0.1 * (x**4).sum(-1)
        return state.per_structure(u), -(x + 0.4 * x**3)

    state = make_state(64, 4, temperature, 1.0, drift=False)
    integ = NoseHoover(1.0, tau=20.0)
    state.energy, state.forces = force(state.positions)
    integ.step(state, force)
    h0 = integ.conserved_energy(state).clone()
    temps = []
    for step in range(4000):
        integ.step(state, force)
        if step > 1000:
            temps.append(state.temperature().mean().item())
    drift = (integ.conserved_energy(state) - h0).abs().max().item()
    assert drift < 1e-3 * (units.kB * temperature * 12)
    assert np.mean(temps) == pytest.approx(temperature, rel=0.05)


def test_select_keeps_the_chosen_replicas_in_order():
    state = make_state(4, 3, 300.0, 1.0)
    keep = torch.tensor([True, False, True, False])
    sub = state.select(keep)
    assert sub.n_structures == 2
    assert torch.equal(sub.structure_index, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert torch.equal(sub.positions, torch.cat([state.positions[0:3], state.positions[6:9]]))


def test_remove_drift_zeroes_each_centre_of_mass_velocity():
    state = make_state(3, 5, 300.0, 1.0)
    remove_drift(state)
    p = torch.zeros(3, 3, dtype=torch.float64).index_add_(0, state.structure_index, state.masses * state.velocities)
    assert p.abs().max() < 1e-12


def test_maxwell_boltzmann_has_the_right_temperature():
    state = make_state(2000, 3, 700.0, 1.0)
    assert state.temperature().mean().item() == pytest.approx(700.0, rel=0.02)


def test_unknown_integrator_is_a_user_error():
    from boltzmatch.errors import BoltzmatchError

    with pytest.raises(BoltzmatchError, match="unknown integrator"):
        make_integrator("leapfrog", 1.0)
