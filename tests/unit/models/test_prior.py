"""The bonded prior: Boltzmann inversion recovers known constants, its forces are −∇U, it belongs to
one molecule, and a run directory keeps it through load, resume and fine-tuning."""

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.build import molecule

import boltzmatch
from boltzmatch.data import AtomsBatch
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model
from boltzmatch.models.base import energy_and_forces
from boltzmatch.models.prior import BondedPrior, attach_prior
from boltzmatch.runs import run_dir as rd
from boltzmatch.units import boltzmann_beta


def water_frames(n: int, r0: float = 0.96, sigma_r: float = 0.02, sigma_theta: float = 0.05, seed: int = 0):
    """Water with independent Gaussian O–H lengths (Å) and H–O–H angle (rad) about 104.5°."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        r1, r2 = rng.normal(r0, sigma_r, 2)
        theta = np.radians(104.5) + rng.normal(0.0, sigma_theta)
        positions = [[0, 0, 0], [r1, 0, 0], [r2 * np.cos(theta), r2 * np.sin(theta), 0]]
        frames.append(Atoms("OH2", positions=positions))
    return frames


def test_boltzmann_inversion_recovers_the_width_of_each_coordinate():
    temperature = 300.0
    frames = water_frames(20_000)
    prior = BondedPrior.fit(frames, temperature)
    beta = boltzmann_beta(temperature)
    # U = k/2 (r - r0)^2 at temperature T has var r = 1/(beta k): k = 1/(beta 0.02^2) = 97 eV/Å²
    np.testing.assert_allclose(prior.bond_r0.numpy(), 0.96, atol=1e-3)
    np.testing.assert_allclose(prior.bond_k.numpy(), 1.0 / (beta * 0.02**2), rtol=0.03)
    cos = np.cos(np.radians(104.5) + np.random.default_rng(1).normal(0, 0.05, 200_000))
    assert prior.angle_c0.item() == pytest.approx(cos.mean(), abs=1e-3)
    assert prior.angle_k.item() == pytest.approx(1.0 / (beta * cos.var()), rel=0.03)


def test_improper_holds_a_planar_centre_and_its_width_comes_from_the_data():
    # formaldehyde: C with three neighbours, out-of-plane height h ~ N(0, 0.03^2) Å
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(5000):
        h = rng.normal(0.0, 0.03)
        positions = [[0, 0, h], [1.21, 0, 0], [-0.55, 0.94, 0], [-0.55, -0.94, 0]]
        frames.append(Atoms("COH2", positions=positions))
    prior = BondedPrior.fit(frames, 300.0)
    (centre, *ends), = prior.improper_index.tolist()
    assert centre == 0 and ends == [1, 2, 3]
    assert abs(prior.improper_h0.item()) < 2e-3
    assert prior.improper_k.item() == pytest.approx(1.0 / (boltzmann_beta(300.0) * 0.03**2), rel=0.05)
    lifted = Atoms("COH2", positions=[[0, 0, 0.2], [1.21, 0, 0], [-0.55, 0.94, 0], [-0.55, -0.94, 0]])
    flat = Atoms("COH2", positions=[[0, 0, 0.0], [1.21, 0, 0], [-0.55, 0.94, 0], [-0.55, -0.94, 0]])
    energy = prior.double()(AtomsBatch.from_atoms([lifted, flat], dtype=torch.float64))
    assert energy[0].item() == pytest.approx(reference_energy(prior, lifted), rel=1e-10)
    assert energy[1].item() == pytest.approx(reference_energy(prior, flat), rel=1e-10)
    improper = 0.5 * prior.improper_k.item() * 0.2**2
    assert improper > 20 / boltzmann_beta(300.0)  # 0.2 Å out of plane costs > 20 kT: far outside the data


def reference_energy(prior, atoms) -> float:
    """The prior's energy (eV) term by term in numpy."""
    p, total = atoms.positions, 0.0
    for (i, j), r0, k in zip(prior.bond_index.tolist(), prior.bond_r0.tolist(), prior.bond_k.tolist()):
        total += 0.5 * k * (np.linalg.norm(p[j] - p[i]) - r0) ** 2
    for (a, c, b), c0, k in zip(prior.angle_index.tolist(), prior.angle_c0.tolist(), prior.angle_k.tolist()):
        u, v = p[a] - p[c], p[b] - p[c]
        total += 0.5 * k * (u @ v / np.linalg.norm(u) / np.linalg.norm(v) - c0) ** 2
    for (c, a, b, d), h0, k in zip(prior.improper_index.tolist(), prior.improper_h0.tolist(),
                                   prior.improper_k.tolist()):
        n = np.cross(p[b] - p[a], p[d] - p[a])
        total += 0.5 * k * ((p[c] - p[a]) @ n / np.linalg.norm(n) - h0) ** 2
    for (i, j, k, m), mu, strength in zip(prior.torsion_index.tolist(), prior.torsion_mu.tolist(),
                                          prior.torsion_k.tolist()):
        omega = np.radians(atoms.get_dihedral(i, j, k, m))
        total += strength * (1 - np.cos(omega - mu))
    for (i, j), low, high in zip(prior.wall_index.tolist(), prior.wall_low.tolist(), prior.wall_high.tolist()):
        d = np.linalg.norm(p[j] - p[i])
        total += 0.5 * prior.wall_k * (max(0.0, low - d) ** 2 + max(0.0, d - high) ** 2)
    return total


def test_walls_are_zero_on_the_training_frames_and_rise_outside_their_distances():
    frames = peroxide_frames(500, mu=np.radians(110), kappa=4.0)
    prior = BondedPrior.fit(frames, 300.0).double()
    assert len(prior.wall_index) == 6 and prior.wall_k == 20.0
    walls_only = BondedPrior.from_config({**prior.to_config(), "bonds": [], "angles": [], "torsions": []}).double()
    assert walls_only(AtomsBatch.from_atoms(frames, dtype=torch.float64)).abs().max().item() < 1e-20  # rounding
    stretched = frames[0].copy()
    stretched.positions[3] += [0.0, 0.0, 5.0]  # the second H far beyond every H–x distance seen
    lo_hi = {tuple(ij): (lo, hi) for ij, lo, hi in zip(prior.wall_index.tolist(), prior.wall_low.tolist(),
                                                       prior.wall_high.tolist())}
    d = stretched.get_all_distances()
    expected = sum(0.5 * 20.0 * max(0.0, d[i, j] - hi) ** 2 for (i, j), (lo, hi) in lo_hi.items())
    energy = walls_only(AtomsBatch.from_atoms([stretched], dtype=torch.float64)).item()
    assert energy == pytest.approx(expected, rel=1e-10) and energy > 50.0


def peroxide_frames(n: int, mu: float, kappa: float, seed: int = 0):
    """H–O–O–H with its dihedral (rad) drawn from a von Mises distribution, bonds and angles jittered."""
    rng = np.random.default_rng(seed)
    frames = []
    for omega in rng.vonmises(mu, kappa, n):
        h1 = [0.95 * np.cos(np.radians(80)), 0.95 * np.sin(np.radians(80)), 0.0]
        h2 = [1.47 - 0.95 * np.cos(np.radians(80)), 0.95 * np.sin(np.radians(80)) * np.cos(omega),
              0.95 * np.sin(np.radians(80)) * np.sin(omega)]
        positions = np.array([h1, [0, 0, 0], [1.47, 0, 0], h2]) + rng.normal(0, 0.01, (4, 3))  # thermal jitter
        frames.append(Atoms("HOOH", positions=positions))
    return frames


def test_torsion_is_a_von_mises_fit_and_its_energy_matches_ase_dihedrals():
    frames = peroxide_frames(20_000, mu=np.radians(110), kappa=4.0)
    prior = BondedPrior.fit(frames, 300.0)
    assert prior.torsion_index.tolist() == [[0, 1, 2, 3]]
    assert abs(np.degrees(prior.torsion_mu.item()) - 110) < 1.0
    assert prior.torsion_k.item() * boltzmann_beta(300.0) == pytest.approx(4.0, rel=0.05)  # K = κ k_BT
    probe = peroxide_frames(5, mu=0.0, kappa=0.1, seed=3)
    energy = prior.double()(AtomsBatch.from_atoms(probe, dtype=torch.float64))
    for s, atoms in enumerate(probe):
        assert energy[s].item() == pytest.approx(reference_energy(prior, atoms), rel=1e-9, abs=1e-12)
    batch = AtomsBatch.from_atoms(probe[:1], dtype=torch.float64)
    positions = batch.positions.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(prior(batch.with_positions(positions)).sum(), positions)
    for atom in range(4):
        for axis in range(3):
            step = torch.zeros_like(positions)
            step[atom, axis] = 1e-6
            numeric = (prior(batch.with_positions(positions.detach() + step))
                       - prior(batch.with_positions(positions.detach() - step))).item() / 2e-6
            assert grad[atom, axis].item() == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_prior_energy_is_the_sum_of_its_terms_and_forces_are_its_negative_gradient():
    frames = water_frames(200)
    prior = BondedPrior.fit(frames, 300.0).double()
    x = water_frames(3, sigma_r=0.05, sigma_theta=0.2, seed=5)
    batch = AtomsBatch.from_atoms(x, dtype=torch.float64)
    energy = prior(batch)
    for s, atoms in enumerate(x):
        assert energy[s].item() == pytest.approx(reference_energy(prior, atoms), rel=1e-10)
    model = build_model({"name": "schnet", "n_features": 8, "n_interactions": 1, "n_rbf": 6, "dtype": "float64"})
    alone = model(batch).detach()
    attach_prior(model, prior.to_config())
    torch.testing.assert_close(model(batch).detach(), alone + energy.detach())
    _, forces = energy_and_forces(model, batch)
    h, flat = 1e-6, batch.positions.detach().clone()
    for atom, axis in [(0, 0), (1, 1), (2, 0), (2, 2)]:
        plus, minus = flat.clone(), flat.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        numeric = -(model(batch.with_positions(plus)) - model(batch.with_positions(minus))).sum() / (2 * h)
        assert forces[atom, axis].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-8)


def test_prior_refuses_other_molecules_and_models_that_compute_energy_their_own_way():
    prior = BondedPrior.fit(water_frames(50), 300.0)
    with pytest.raises(BoltzmatchError, match="one molecule of 3 atoms"):
        prior(AtomsBatch.from_atoms([molecule("CH4")]))
    with pytest.raises(BoltzmatchError, match="one molecule of 3 atoms"):
        prior(AtomsBatch.from_atoms([Atoms("H2O", positions=np.eye(3))]))  # same atoms, other order
    with pytest.raises(BoltzmatchError, match="frames of one molecule"):
        BondedPrior.fit(water_frames(20) + [molecule("CH4")], 300.0)
    with pytest.raises(BoltzmatchError, match="linear computes its energy its own way"):
        attach_prior(build_model({"name": "linear", "elements": [1, 8]}), prior.to_config())


def test_run_directory_keeps_the_prior_through_load_resume_and_finetune(tmp_path, ethanol_xtb):
    common = dict(model="schnet", config={"n_features": 8, "n_interactions": 1, "n_rbf": 6}, temperature=500.0,
                  batch_size=16, progress=False)
    boltzmatch.train(ethanol_xtb, out=tmp_path / "run", objective="dsm", prior="bonded", epochs=2, **common)
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["prior"]
    assert stored["numbers"] == [6, 6, 8, 1, 1, 1, 1, 1, 1] and len(stored["bonds"]) == 8
    model = rd.load(tmp_path / "run")
    assert model.prior is not None and model.prior.to_config() == stored
    boltzmatch.train(None, out=tmp_path / "run", resume=True, progress=False)  # finished: loads its prior
    boltzmatch.finetune(tmp_path / "run", data=ethanol_xtb, out=tmp_path / "tuned", objective="dsm",
                        temperature=500.0, epochs=1, progress=False)
    assert yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())["prior"] == stored
    with pytest.raises(BoltzmatchError, match="pass --temperature"):
        boltzmatch.train(ethanol_xtb, out=tmp_path / "bad", objective="energy", prior="bonded", epochs=1,
                         **{**common, "temperature": None})
