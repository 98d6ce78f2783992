"""Distribution metrics and geometry against known answers."""

import math

import numpy as np
import pytest
from ase.build import bulk, molecule
from scipy.stats import norm

from boltzmatch.analysis.metrics import distance_histogram, histogram_mae, ks_test, mmd, without_element_offsets
from boltzmatch.data.geometry import bond_angles, bond_lengths, find_bonds, pair_distances


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


def test_mmd_test_agrees_with_mmd_and_its_p_value_separates():
    from boltzmatch.analysis.metrics import mmd_test

    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, (300, 2)), rng.normal(0, 1, (300, 2))
    stat, p = mmd_test(x, y, n_permutations=200)
    assert stat == pytest.approx(mmd(x, y), abs=1e-12)
    assert p > 0.05
    _, p_shift = mmd_test(x, y + 0.5, n_permutations=200)
    assert p_shift < 0.01


def test_mmd_test_p_values_are_uniform_under_the_null():
    from boltzmatch.analysis.metrics import mmd_test

    rng = np.random.default_rng(3)
    p_values = [mmd_test(rng.normal(size=(60, 2)), rng.normal(size=(60, 2)), n_permutations=99, seed=k)[1]
                for k in range(40)]
    assert 0.3 < np.mean(p_values) < 0.7
    assert np.mean(np.array(p_values) < 0.1) < 0.25


def test_wasserstein2_equals_the_sorted_matching_in_one_dimension():
    pytest.importorskip("ot", reason="the generative extra (POT)")
    from boltzmatch.analysis.metrics import wasserstein2

    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 400), rng.normal(2, 1, 400)
    exact = math.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))
    assert wasserstein2(a[:, None], b[:, None]) == pytest.approx(exact, rel=1e-9)
    # 2-D translation by d: W2 = |d| exactly for identical point sets
    pts = rng.normal(size=(200, 2))
    assert wasserstein2(pts, pts + np.array([3.0, 4.0])) == pytest.approx(5.0, rel=1e-9)


def test_jensen_shannon_limits_and_floor():
    from boltzmatch.analysis.metrics import histogram2d_jsd, jensen_shannon, with_floor

    assert jensen_shannon([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-15)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(math.log(2))
    rng = np.random.default_rng(5)
    angles = rng.uniform(-np.pi, np.pi, (4000, 2))
    value, floor, n = with_floor(histogram2d_jsd, angles[:1000] + 1.0, angles)
    assert n == 1000 and floor < value


def test_dihedral_angles_match_ase_and_alanine_is_recognised():
    from boltzmatch.data.geometry import dihedral_angles, ramachandran

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.1, seed=1)
    quads = [(0, 1, 2, 3), (3, 0, 1, 6), (8, 2, 1, 5)]
    ours = np.degrees(dihedral_angles([atoms], quads))[0]
    theirs = np.array([atoms.get_dihedral(*q) for q in quads])  # ASE: degrees in [0, 360)
    assert np.allclose(np.mod(ours, 360), theirs, atol=1e-8)
    assert ramachandran([atoms]) is None


def test_pair_distances_of_same_size_molecules_match_ase():
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(5):
        atoms = molecule("CH3CH2OH")
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    d = pair_distances(frames)
    iu = np.triu_indices(9, k=1)
    assert np.allclose(d, np.stack([a.get_all_distances()[iu] for a in frames]), atol=1e-12)
    cu = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)  # periodic frames keep the minimum image
    assert np.allclose(pair_distances([cu]), cu.get_all_distances(mic=True)[np.triu_indices(2, k=1)])


def _dimers(distances: np.ndarray) -> list:
    from ase import Atoms

    return [Atoms("H2", positions=[[0, 0, 0], [0, 0, d]]) for d in distances]


def test_replica_histograms_pool_to_the_histogram_of_all_frames():
    from boltzmatch.analysis.metrics import replica_histograms

    rng = np.random.default_rng(1)
    replicas = [_dimers(rng.normal(1.0, 0.05, n)) for n in (30, 0, 7)]  # an empty (collapsed at once) replica
    hist = replica_histograms(replicas, r_max=2.0, bins=100)
    r, h = distance_histogram([f for rep in replicas for f in rep], r_max=2.0, bins=100)
    assert np.allclose(hist.r, r) and np.allclose(hist.density(), h)
    assert np.allclose(hist.density([0, 0]), distance_histogram(replicas[0], r_max=2.0, bins=100)[1])


def test_bootstrap_over_replicas_matches_the_spread_of_reruns():
    """Replicas with their own offsets (frames within one correlated): the spread of the pooled h(r)
    MAE over independent reruns is what the replica bootstrap of one run must reproduce."""
    from boltzmatch.analysis.metrics import bootstrap_hr_mae, replica_histograms

    rng = np.random.default_rng(2)
    _, h_ref = distance_histogram(_dimers(rng.normal(1.0, 0.05, 20000)), r_max=2.0, bins=200)

    def run():
        return [_dimers(rng.normal(1.03 + rng.normal(0, 0.03), 0.05, 200)) for _ in range(16)]

    reruns = []
    for _ in range(60):
        hist = replica_histograms(run(), r_max=2.0, bins=200)
        reruns.append(histogram_mae(hist.r, hist.density(), h_ref))
    spread = np.std(reruns)
    boot = bootstrap_hr_mae(replica_histograms(run(), r_max=2.0, bins=200), h_ref, n_boot=400, seed=0)
    assert 0.6 * spread < np.std(boot) < 1.6 * spread
    # pooling frames as if independent would claim far less spread than reruns show
    frames = [f for rep in run() for f in rep]
    one_each = replica_histograms([[f] for f in frames], r_max=2.0, bins=200)
    assert np.std(bootstrap_hr_mae(one_each, h_ref, n_boot=400, seed=0)) < 0.6 * spread


def test_constant_hazard_median_recovers_an_exponential_and_covers_it():
    from boltzmatch.analysis.metrics import constant_hazard_median

    rng = np.random.default_rng(3)
    true_median = 300.0  # ps, watched 100 ps: the observed median is censored
    rate = np.log(2) / true_median

    def censored(n):
        t = rng.exponential(1 / rate, n)
        return np.minimum(t, 100.0), t < 100.0

    median, low, high = constant_hazard_median(*censored(20000))
    assert median == pytest.approx(true_median, rel=0.05) and low < true_median < high
    covered = []
    for _ in range(400):
        _, low, high = constant_hazard_median(*censored(32))
        covered.append(low <= true_median <= high)
    assert 0.9 <= np.mean(covered) <= 0.995
    median, low, high = constant_hazard_median(np.full(8, 100.0), np.zeros(8, bool))
    assert median == np.inf and high == np.inf and 0 < low < np.inf


def test_sample_metrics_h_r_counts_every_frame_beyond_the_subsample():
    """h(r) MAE is over all MD frames, not the ``max_frames`` draw the KS/MMD metrics use (the draw's noise
    was as large as the differences between models it judged)."""
    from boltzmatch.analysis.compare import sample_metrics

    rng = np.random.default_rng(4)

    def frames(n, scale):
        out = []
        for _ in range(n):
            atoms = molecule("CH3CH2OH")
            atoms.positions += rng.normal(0, scale, atoms.positions.shape)
            out.append(atoms)
        return out

    reference, samples = frames(50, 0.05), frames(300, 0.08)
    r, h_ref = distance_histogram(reference)
    _, h_all = distance_histogram(samples)
    got = sample_metrics(samples, reference, max_frames=20, seed=0)["hr_mae"]
    assert got == pytest.approx(histogram_mae(r, h_all, h_ref), rel=1e-12)


def test_censored_median_ratio_bounds_what_a_judge_cannot_see():
    from boltzmatch.analysis.metrics import censored_median_ratio

    assert censored_median_ratio(50.0, 100.0, 10.0, 100.0) == (5.0, False)  # both observed
    assert censored_median_ratio(750.0, 750.0, 65.8, 100.0) == (pytest.approx(750 / 65.8), True)  # ≥: survived
    assert censored_median_ratio(100.0, 100.0, 100.0, 100.0) == (None, False)  # the base's median unseen
    # the base judged longer than the method: its observed median decides, the method's censored one bounds
    assert censored_median_ratio(100.0, 100.0, 300.0, 400.0) == (pytest.approx(1 / 3), True)


def test_the_ks_plot_marks_scipy_s_distance_where_it_is_reached(tmp_path):
    from boltzmatch.analysis.plots import ks_distance_at, ks_panels

    rng = np.random.default_rng(3)
    samples, reference = rng.normal(0.3, 1.0, 700), rng.normal(0.0, 1.0, 900)
    d, at, f_samples, f_reference = ks_distance_at(samples, reference)
    assert d == pytest.approx(ks_test(samples, reference)[0], abs=1e-12)
    assert abs(f_samples - f_reference) == pytest.approx(d)
    assert (samples <= at).mean() == pytest.approx(f_samples) and (reference <= at).mean() == pytest.approx(f_reference)
    path = ks_panels({"x": {"reference": reference, "model": samples}}, tmp_path / "ks.png", units={"x": "Å"})
    assert path.stat().st_size > 0


def eight_gaussians(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angles = rng.integers(8, size=n) * np.pi / 4
    return 4.0 * np.stack([np.cos(angles), np.sin(angles)], 1) + 0.5 * rng.standard_normal((n, 2))


def ring(n: int, seed: int) -> np.ndarray:
    """The eight modes smeared into a ring of the same radius and width (the GAN's failure)."""
    rng = np.random.default_rng(seed)
    angles = rng.random(n) * 2 * np.pi
    return 4.0 * np.stack([np.cos(angles), np.sin(angles)], 1) + 0.5 * rng.standard_normal((n, 2))


def test_the_multi_scale_kernel_sees_a_ring_the_median_bandwidth_misses():
    from boltzmatch.analysis.metrics import MMD_SCALES, mmd_test

    data, smeared, same = eight_gaussians(200, 1), ring(200, 11), eight_gaussians(200, 21)
    assert mmd_test(smeared, data, n_permutations=200, seed=0)[1] > 0.3  # the median width: indistinguishable
    assert mmd_test(smeared, data, n_permutations=200, seed=0, scales=MMD_SCALES)[1] < 0.05
    assert mmd_test(same, data, n_permutations=200, seed=0, scales=MMD_SCALES)[1] > 0.3  # and no false alarm


def test_floor_spread_and_mode_coverage():
    from boltzmatch.analysis.metrics import floor_spread, mode_coverage, wasserstein2

    data = eight_gaussians(2000, 3)
    exact = eight_gaussians(500, 4)  # an exact sampler: its value lies within the floor's spread
    spread = floor_spread(wasserstein2, exact, data, seed=0, splits=5)
    assert spread["floor_sd"] > 0 and abs(spread["value"] - spread["floor"]) < 3 * spread["floor_sd"] + 1e-9
    centres = 4.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    balanced = mode_coverage(exact, centres, radius=1.5)
    assert balanced["modes_covered"] == 8 and sum(balanced["mode_shares"]) == pytest.approx(1.0)
    assert balanced["max_share_deviation"] < 0.3  # 500 draws: binomial spread of a share ≈ 0.13 × 1/8
    one_mode = centres[0] + 0.5 * np.random.default_rng(5).standard_normal((500, 2))
    covered = mode_coverage(one_mode, centres, radius=1.5)
    assert covered["modes_covered"] == 1 and covered["in_modes"] > 0.95
    assert covered["max_share_deviation"] == pytest.approx(7.0)  # all in one of 8: share 1 = 8 × 1/8


def test_a_floor_computed_for_one_model_is_reused_for_the_next_unchanged():
    """`generative compare` computed every model's floor afresh (the same numbers each time: 60 s of the tutorial's
    compare, now 27 s with identical compare.json); the halvings' floors of one model are handed to the next."""
    from boltzmatch.analysis.metrics import MMD_SCALES, floor_spread, mmd_test

    data, first, second = eight_gaussians(800, 3), eight_gaussians(400, 4), ring(400, 5)
    calls = []

    def metric(a, b):
        calls.append(1)
        return mmd_test(a, b, n_permutations=0, seed=0, scales=MMD_SCALES)[0]

    one = floor_spread(metric, first, data, seed=2, splits=3)
    assert len(calls) == 6 and len(one["floors"]) == 3
    fresh = floor_spread(metric, second, data, seed=2, splits=3)
    reused = floor_spread(metric, second, data, seed=2, splits=3, floors=one["floors"])
    assert len(calls) == 6 + 6 + 3  # the reused call computes the values alone
    assert reused == fresh


def test_valid_structure_fraction_catches_atoms_too_close_and_broken_bonds():
    from boltzmatch.analysis.metrics import valid_structure_fraction

    rng = np.random.default_rng(0)
    base = molecule("CH3CH2OH")
    reference = []
    for _ in range(50):
        frame = base.copy()
        frame.positions += rng.normal(0, 0.03, frame.positions.shape)
        reference.append(frame)
    fine = [a.copy() for a in reference[:10]]
    squeezed = reference[10].copy()
    h = [i for i, z in enumerate(squeezed.numbers) if z == 1]
    squeezed.positions[h[1]] = squeezed.positions[h[0]] + [0.36, 0, 0]  # H–H at 0.36 Å
    stretched = reference[11].copy()
    stretched.positions[0] += [1.0, 0, 0]  # a C moved 1 Å: its bonds far beyond their range
    assert valid_structure_fraction(fine, reference) == 1.0
    assert valid_structure_fraction([squeezed, stretched, *fine[:2]], reference) == 0.5


def test_survival_curves_that_coincide_are_told_apart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from boltzmatch.analysis.plots import draw_survival

    fig, ax = plt.subplots()
    draw_survival(ax, {"a": np.array([1.0, 1.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.5, 1.0])}, 1.0)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a", "b (same as a)", "c"]
    assert ax.get_lines()[0].get_linestyle() != ax.get_lines()[1].get_linestyle()
    plt.close(fig)


def test_without_element_offsets_removes_exactly_a_per_element_zero_and_nothing_else():
    """Errors = per-element offset (a model's arbitrary energy zero) + conformational errors: the offset goes, the
    conformational part stays; for one composition it is the mean error removed."""
    rng = np.random.default_rng(0)
    counts = np.array([[6, 2, 1]] * 30 + [[4, 1, 1]] * 20 + [[8, 3, 1]] * 10, dtype=float)  # C2H6O, CH4O, C3H8O
    shape = rng.normal(0.0, 0.05, len(counts))
    shape -= counts @ np.linalg.lstsq(counts, shape, rcond=None)[0]  # nothing a per-element offset can explain
    offsets = np.array([1.3, -4.0, 7.5])  # eV per H, C, O
    np.testing.assert_allclose(without_element_offsets(counts @ offsets + shape, counts), shape, atol=1e-12)
    one = counts[:30]
    errors = rng.normal(2.0, 0.1, 30)
    np.testing.assert_allclose(without_element_offsets(errors, one), errors - errors.mean(), atol=1e-12)
    # one mean for the whole file leaves each composition's share of the offset in (what evaluate did before)
    mixed = counts @ offsets + shape
    assert np.abs(mixed - mixed.mean()).mean() > 10 * np.abs(shape).mean()
