"""Noise-conditional energy models: σ changes the energy, clean frames mean σ_min."""

from dataclasses import replace

import torch
from ase.build import molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model, energy_and_forces


def test_noise_level_conditions_the_energy_and_defaults_to_sigma_min():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 1, "n_rbf": 8,
                         "noise_levels": [0.005, 0.3]}).double()
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH"), molecule("H2O")], dtype=torch.float64)
    clean = model(batch)
    at_min = model(replace(batch, noise_level=torch.tensor([0.005, 0.005], dtype=torch.float64)))
    at_max = model(replace(batch, noise_level=torch.tensor([0.3, 0.005], dtype=torch.float64)))
    assert torch.allclose(clean, at_min)
    assert not torch.isclose(at_max[0], clean[0]) and torch.isclose(at_max[1], clean[1])
    # the score stays conservative at every σ: forces are −∇E of the σ-conditioned energy
    _, forces = energy_and_forces(model, replace(batch, noise_level=torch.tensor([0.3, 0.3], dtype=torch.float64)))
    assert forces.shape == batch.positions.shape and torch.isfinite(forces).all()


def test_dsm_passes_each_structure_its_noise_level():
    from boltzmatch.objectives.score import ScoreMatching

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, batch):
            seen.append(batch.noise_level)
            return (batch.positions**2).sum() * torch.ones(batch.n_structures, dtype=batch.positions.dtype)

    batch = AtomsBatch.from_atoms([molecule("H2O")] * 6, dtype=torch.float64)
    ScoreMatching("dsm", 300.0, sigma=[0.1, 0.2]).score_term(Spy(), batch)
    assert seen and set(seen[0].tolist()) <= {0.1, 0.2} and len(seen[0]) == 6
