"""The linear potential's descriptor Jacobian and Laplacian against independent references."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model, energy_and_forces


@pytest.fixture(params=[(False, False), (True, False), (True, True)], ids=["pair", "angular", "fitted-basis"])
def linear(request):
    angular, fitted = request.param
    m = build_model({"name": "linear", "elements": [1, 6, 8], "n_rbf": 4, "cutoff": 4.0,
                     "angular": angular, "dtype": "float64", "wall": 0.0})  # the wall is not part of θ·φ
    if fitted:  # basis fitted to ethanol alone: water's distances fall outside, in the linear continuation
        m.fit_pair_basis(AtomsBatch.from_atoms(structures()[:1], dtype=torch.float64))
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


def test_fitted_basis_spans_the_data_and_the_wall_is_zero_on_it():
    m = build_model({"name": "linear", "elements": [1, 6, 8], "n_rbf": 6, "cutoff": 4.0, "dtype": "float64"})
    data = AtomsBatch.from_atoms(structures(), dtype=torch.float64)
    m.fit_pair_basis(data)
    assert float(m.wall_energy(data).abs().max()) == 0.0
    hh = int(m.pair_table[0, 0])
    lo, hi = m.pair_range[hh].tolist()
    assert 0.0 < lo < hi <= 4.0 and bool((m.pair_centers[hh] >= lo).all() and (m.pair_centers[hh] <= hi).all())
    # two hydrogens of ethanol squeezed 0.3 Å closer than any H–H distance in the data: the wall
    # costs ½·wall·0.3² (each unordered pair once), and the model's energy rises by exactly that
    squeezed = structures()[0].copy()
    h = [i for i, z in enumerate(squeezed.numbers) if z == 1][:2]
    d = squeezed.positions[h[1]] - squeezed.positions[h[0]]
    target = lo - 0.3
    squeezed.positions[h[1]] = squeezed.positions[h[0]] + d / np.linalg.norm(d) * target
    batch = AtomsBatch.from_atoms([squeezed], dtype=torch.float64)
    others = squeezed.get_all_distances()[np.ix_(h, [i for i in range(len(squeezed)) if squeezed.numbers[i] == 1])]
    assert others[others > 0].min() == pytest.approx(target)
    assert float(m.wall_energy(batch)[0]) >= 0.5 * m.wall * 0.3**2 * (1 - 1e-9)


def test_a_model_saved_before_fitted_bases_still_loads():
    m = build_model({"name": "linear", "elements": [1, 6, 8], "n_rbf": 4, "cutoff": 4.0, "dtype": "float64"})
    state = {k: v for k, v in m.state_dict().items() if not k.startswith("pair_")}
    fresh = build_model({"name": "linear", "elements": [1, 6, 8], "n_rbf": 4, "cutoff": 4.0, "dtype": "float64"})
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.pair_centers, m.pair_centers)
