"""Physics checks every EnergyModel passes (the NequIP-style mixin, as a parametrised suite).

A new model joins by adding its config to MODEL_CONFIGS: invariance under rotation,
translation and permutation of like atoms; forces equal finite differences; smooth energy at
the cutoff; second derivatives pass gradgradcheck in float64; periodic images handled.
"""

import importlib.util

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model, energy_and_forces

ELEMENTS = [1, 6, 8, 29]
MODEL_CONFIGS = {
    "schnet": {"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0},
    "painn": {"name": "painn", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0},
    "painn-bessel": {"name": "painn", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0,
                     "radial_basis": "bessel"},
    "mlp": {"name": "mlp", "elements": ELEMENTS, "hidden": [16, 16], "n_rbf": 6, "cutoff": 4.0, "angular": True},
    "linear": {"name": "linear", "elements": ELEMENTS, "n_rbf": 6, "cutoff": 4.0, "angular": True},
    # noise-conditional (diffusion) variants, evaluated at σ_min as MD uses them
    "schnet-noise": {"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0,
                     "noise_levels": [0.01, 0.5]},
    "painn-noise": {"name": "painn", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0,
                    "noise_levels": [0.01, 0.5]},
}
if importlib.util.find_spec("mace"):  # the `mace` extra (in `all`, so CI runs it)
    MODEL_CONFIGS["mace"] = {"name": "mace", "elements": ELEMENTS, "hidden_irreps": "8x0e + 8x1o", "max_ell": 2,
                             "correlation": 2, "radial_mlp": [8, 8], "r_max": 4.0, "num_bessel": 6}
# adapters whose package lives in its own environment: present as cases, skipped and counted where it is absent
MODEL_CONFIGS["schnetpack-schnet"] = {"name": "schnetpack", "representation": "schnet"}
MODEL_CONFIGS["schnetpack-painn"] = {"name": "schnetpack", "representation": "painn"}
MODEL_CONFIGS["nequip"] = {"name": "nequip"}
OWN_ENVIRONMENT = {
    "schnetpack": "SchNetPack 2.1 needs torch < 2.5: its own venv (benchmarks/external_models.py --part schnetpack)",
    "nequip": "NequIP needs e3nn >= 0.6, MACE pins 0.4.4: run in .venv-nequip (scripts/nequip_env.sh)",
}


def _case(name: str):
    package = MODEL_CONFIGS[name]["name"]
    if package in OWN_ENVIRONMENT and importlib.util.find_spec(package) is None:
        return pytest.param(name, marks=pytest.mark.skip(reason=OWN_ENVIRONMENT[package]))
    return name


@pytest.fixture(params=[_case(name) for name in MODEL_CONFIGS])
def model(request, tmp_path):
    torch.manual_seed(0)
    config = dict(MODEL_CONFIGS[request.param])
    if config["name"] == "schnetpack":
        from helpers import schnetpack_model_file

        config = {"name": "schnetpack", "file": str(schnetpack_model_file(tmp_path / "best_model",
                                                                         config["representation"]))}
        return build_model({**config, "dtype": "float64"})
    if config["name"] == "nequip":
        from boltzmatch.models.external.nequip import NequIPModel
        from helpers import nequip_graph_model

        return NequIPModel.from_graph_model(nequip_graph_model())
    m = build_model({**config, "dtype": "float64"})
    if request.param == "linear":
        with torch.no_grad():
            m.theta.normal_()
    # non-trivial normalisation, as after fitting
    if hasattr(m, "element_energy") and request.param != "linear":
        m.set_normalization({1: -13.6, 6: -1030.0, 8: -2040.0}, 0.7)
    return m


def batch_of(structures):
    return AtomsBatch.from_atoms(structures, dtype=torch.float64)


def ethanol(seed=0):
    atoms = molecule("CH3CH2OH")
    atoms.positions += 0.05 * np.random.default_rng(seed).standard_normal(atoms.positions.shape)
    return atoms


def test_rotation_translation_invariance(model):
    a = ethanol()
    b = a.copy()
    rotation = Rotation.random(random_state=1).as_matrix()
    b.positions = a.positions @ rotation.T + np.array([1.0, -2.0, 0.5])
    e, f = energy_and_forces(model, batch_of([a, b]))
    torch.testing.assert_close(e[0], e[1], rtol=1e-10, atol=1e-10)
    # forces rotate with the structure (equivariance follows from invariance)
    torch.testing.assert_close(f[9:], f[:9] @ torch.as_tensor(rotation.T), rtol=1e-8, atol=1e-10)


def test_permutation_of_like_atoms(model):
    a = ethanol()
    b = a.copy()
    hydrogens = [i for i, z in enumerate(a.numbers) if z == 1]
    order = list(range(len(a)))
    order[hydrogens[0]], order[hydrogens[-1]] = order[hydrogens[-1]], order[hydrogens[0]]
    b = b[order]
    e, _ = energy_and_forces(model, batch_of([a, b]))
    torch.testing.assert_close(e[0], e[1], rtol=1e-10, atol=1e-10)


def test_forces_equal_finite_differences(model):
    batch = batch_of([ethanol()])
    _, forces = energy_and_forces(model, batch)
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (8, 2)]:
        plus = batch.positions.clone()
        plus[atom, axis] += h
        minus = batch.positions.clone()
        minus[atom, axis] -= h
        with torch.no_grad():
            fd = -(model(batch.with_positions(plus)) - model(batch.with_positions(minus))) / (2 * h)
        assert float(fd) == pytest.approx(float(forces[atom, axis]), rel=1e-5, abs=1e-7)


def test_smooth_at_cutoff(model):
    """Energy and force of a C–O pair are continuous as the distance crosses the cutoff."""
    cutoff = model.cutoff
    energies, forces = [], []
    for r in (cutoff - 1e-4, cutoff + 1e-4, cutoff + 0.5):
        pair = molecule("CO")
        pair.positions = [[0, 0, 0], [0, 0, r]]
        e, f = energy_and_forces(model, batch_of([pair]))
        energies.append(float(e.detach()))
        forces.append(float(f[1, 2].detach()))
    assert energies[0] == pytest.approx(energies[1], abs=1e-6)
    assert energies[1] == pytest.approx(energies[2], abs=1e-12)
    assert abs(forces[0]) < 1e-4 and forces[2] == 0.0


def test_second_derivatives_gradgradcheck(model):
    batch = batch_of([molecule("H2O")])
    positions = batch.positions.detach().clone().requires_grad_(True)

    def energy(pos):
        return model(batch.with_positions(pos))

    assert torch.autograd.gradcheck(energy, (positions,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(energy, (positions,), eps=1e-6, atol=1e-5)


def test_periodic_images(model):
    """A crystal's energy does not depend on how the cell is repeated (per atom), and uses images."""
    small = bulk("Cu", "fcc", a=3.6, cubic=True)
    big = small.repeat((2, 1, 1))
    e, f = energy_and_forces(model, batch_of([small, big]))
    e = e.detach()
    assert float(e[1]) == pytest.approx(2 * float(e[0]), rel=1e-9)
    torch.testing.assert_close(f, torch.zeros_like(f), atol=1e-8, rtol=0)  # perfect lattice: no forces


def test_float32_default():
    m = build_model(MODEL_CONFIGS["schnet"])
    e, f = energy_and_forces(m, AtomsBatch.from_atoms([ethanol()]))
    assert e.dtype == torch.float32 and torch.isfinite(f).all()


def test_energy_laplacian_equals_hessian_trace(model):
    from boltzmatch.models.derivatives import energy_laplacian

    structures = [ethanol(0), molecule("H2O"), ethanol(1)]
    batch = batch_of(structures)
    positions = batch.positions.detach().requires_grad_(True)
    lap = energy_laplacian(model(batch.with_positions(positions)), positions, batch)
    for s, atoms in enumerate(structures):
        single = batch_of([atoms])
        h = torch.autograd.functional.hessian(
            lambda flat, single=single: model(single.with_positions(flat.reshape(-1, 3))).sum(),
            single.positions.reshape(-1),
        )
        assert float(lap[s]) == pytest.approx(float(torch.trace(h)), rel=1e-8, abs=1e-10)
