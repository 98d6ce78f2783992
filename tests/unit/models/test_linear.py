"""The linear potential's descriptor Jacobian and Laplacian against independent references."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model, energy_and_forces


@pytest.fixture(params=[False, True], ids=["pair", "angular"])
def linear(request):
    m = build_model({"name": "linear", "elements": [1, 6, 8], "n_rbf": 4, "cutoff": 4.0,
                     "angular": request.param, "dtype": "float64"})
    with torch.no_grad():
        m.theta.normal_(generator=torch.Generator().manual_seed(1))
    return m


def structures():
    rng = np.random.default_rng(0)
    out = []
    for name in ("CH3CH2OH", "H2O", "CH3CH2OH"):
        a = molecule(name)
        a.positions += 0.05 * rng.standard_normal(a.positions.shape)
        out.append(a)
    return out


def test_forces_are_minus_g_theta(linear):
    batch = AtomsBatch.from_atoms(structures(), dtype=torch.float64)
    G = linear.descriptor_jacobian(batch)
    _, forces = energy_and_forces(linear, batch)
    torch.testing.assert_close(forces, -(G @ linear.theta.detach()))


def test_jacobian_matches_autograd_jacobian_of_features(linear):
    """Every column of G, not only G θ, against the autograd Jacobian of φ (includes the triplets'
    chain rule through r_a, r_b and cos θ)."""
    for atoms in structures()[:2]:
        single = AtomsBatch.from_atoms([atoms], dtype=torch.float64)
        G = linear.descriptor_jacobian(single)  # (n_atoms, 3, D)
        reference = torch.autograd.functional.jacobian(
            lambda flat, single=single: linear.features(single.with_positions(flat.reshape(-1, 3)))[0],
            single.positions.reshape(-1))  # (D, 3N)
        torch.testing.assert_close(G.reshape(-1, linear.n_features), reference.T, rtol=1e-9, atol=1e-12)


def test_laplacian_matches_hessian_trace(linear):
    batch = AtomsBatch.from_atoms(structures(), dtype=torch.float64)
    lap = linear.descriptor_laplacian(batch)
    for s, atoms in enumerate(structures()):
        single = AtomsBatch.from_atoms([atoms], dtype=torch.float64)

        def phi(flat, single=single):
            return linear.features(single.with_positions(flat.reshape(-1, 3)))[0]

        hessian = torch.autograd.functional.hessian(
            lambda flat: phi(flat) @ torch.ones(linear.n_features, dtype=torch.float64), single.positions.reshape(-1)
        )
        # trace of the Hessian of Σ_d φ_d equals Σ_d Δφ_d
        assert float(lap[s].sum()) == pytest.approx(float(torch.trace(hessian)), rel=1e-8)
        # and one descriptor at a time, via the Jacobian of the gradient
        for d in (0, linear.n_features // 2):
            h = torch.autograd.functional.hessian(lambda flat, d=d: phi(flat)[d], single.positions.reshape(-1))
            assert float(lap[s, d]) == pytest.approx(float(torch.trace(h)), rel=1e-8, abs=1e-10)


def test_element_counts_are_offsets(linear):
    batch = AtomsBatch.from_atoms(structures(), dtype=torch.float64)
    phi = linear.features(batch)
    counts = phi[:, linear.element_offset_slice()]
    assert counts.tolist() == [[6, 2, 1], [2, 0, 1], [6, 2, 1]]
