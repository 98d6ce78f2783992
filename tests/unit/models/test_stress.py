"""The stress of periodic structures, σ = (1/V) ∂U/∂ε, against central finite differences of the energy under
strain (ASE's own numerical stress) for every built-in model in float64, in a sheared bulk cell and a slab."""

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_stress

from boltzmatch.models import build_model
from boltzmatch.simulate import BoltzmatchCalculator

CONFIGS = {
    "schnet": {"name": "schnet", "cutoff": 4.0, "n_features": 16, "n_interactions": 2},
    "painn": {"name": "painn", "cutoff": 4.0, "n_features": 16, "n_interactions": 2},
    "linear": {"name": "linear", "cutoff": 4.0, "elements": [13]},
    "mlp": {"name": "mlp", "cutoff": 4.0, "elements": [13]},
    "mace": {"name": "mace", "r_max": 4.0, "elements": [13]},
}


def _structures():
    crystal = bulk("Al", "fcc", a=4.05, cubic=True).repeat((2, 1, 1))
    crystal.cell[0, 1] += 0.3  # a sheared, non-orthogonal cell
    slab = fcc111("Al", size=(2, 2, 3), vacuum=5.0)
    for atoms in (crystal, slab):
        atoms.rattle(0.1, seed=2)
    return [crystal, slab]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stress_is_the_strain_derivative_of_the_energy(name):
    if name == "mace":
        pytest.importorskip("mace")
    torch.manual_seed(0)
    model = build_model({**CONFIGS[name], "dtype": "float64"})
    with torch.no_grad():
        for p in model.parameters():  # zero-initialised readouts made non-zero, so every term contributes
            p.add_(0.2 * torch.randn_like(p))
    for atoms in _structures():
        atoms.calc = BoltzmatchCalculator(model=model)
        stress = atoms.get_stress()
        numerical = calculate_numerical_stress(atoms, eps=1e-5)
        assert np.abs(stress).max() > 1e-4  # eV/Å³: a stress worth checking
        np.testing.assert_allclose(stress, numerical, atol=1e-8)


def test_a_molecule_has_no_stress():
    model = build_model({**CONFIGS["schnet"], "dtype": "float64"})
    water = molecule("H2O")
    water.calc = BoltzmatchCalculator(model=model)
    water.get_forces()
    with pytest.raises(PropertyNotImplementedError):
        water.get_stress()
