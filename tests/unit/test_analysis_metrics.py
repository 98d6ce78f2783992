"""Distribution metrics and geometry against known answers."""

import math

import numpy as np
import pytest
from ase.build import bulk, molecule
from scipy.stats import norm

from boltzmatch.analysis.geometry import bond_angles, bond_lengths, find_bonds, pair_distances
from boltzmatch.analysis.metrics import distance_histogram, histogram_mae, ks_test, mmd


def test_ks_statistic_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20000), rng.normal(1, 1, 20000)
    stat, p = ks_test(a, b)
    assert stat == pytest.approx(2 * norm.cdf(0.5) - 1, abs=0.02)  # sup |Φ(x) − Φ(x − 1)|
    assert p < 1e-10
    _, p_same = ks_test(a, rng.normal(0, 1, 20000))
    assert p_same > 1e-3


def test_mmd_matches_the_gaussian_closed_form():
    # 1-D N(0,1) vs N(μ,1), kernel width h: MMD² = 2 h/√(h²+2) (1 − exp(−μ²/(2(h²+2))))
    rng = np.random.default_rng(1)
    mu, h = 1.0, 1.0
    x, y = rng.normal(0, 1, (2000, 1)), rng.normal(mu, 1, (2000, 1))
    expected = 2 * h / math.sqrt(h * h + 2) * (1 - math.exp(-mu * mu / (2 * (h * h + 2))))
    assert mmd(x, y, bandwidth=h, max_samples=2000) == pytest.approx(expected, abs=0.01)
    assert abs(mmd(x, rng.normal(0, 1, (2000, 1)), max_samples=2000)) < 0.005


def test_distance_histogram_is_a_density_and_mae_is_bounded():
    frames = [molecule("CH3CH2OH")] * 3
    r, h = distance_histogram(frames, r_max=6.0, bins=120)
    assert np.sum(h) * (r[1] - r[0]) == pytest.approx(1.0)
    assert histogram_mae(r, h, h) == 0.0
    assert histogram_mae(r, h, np.zeros_like(h)) == pytest.approx(1.0)


def test_bonds_and_angles_of_ethanol():
    ethanol = molecule("CH3CH2OH")
    bonds = find_bonds(ethanol)
    assert sorted(bonds.labels(ethanol.numbers)) == sorted(["C-C", "C-O", "H-O"] + ["C-H"] * 5)
    assert bond_angles([ethanol], bonds).shape == (1, 13)  # 6 at each carbon, 1 at oxygen
    lengths = bond_lengths([ethanol], bonds)[0]
    d = ethanol.get_all_distances()
    assert np.allclose(lengths, d[bonds.i, bonds.j])
    assert pair_distances([ethanol]).shape == (1, 36)


def test_periodic_bonds_use_their_cell_offsets():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    bonds = find_bonds(cu)
    lengths = bond_lengths([cu], bonds)[0]
    assert len(bonds) == 4 * 12 // 2
    assert np.allclose(lengths, 3.6 / math.sqrt(2))
