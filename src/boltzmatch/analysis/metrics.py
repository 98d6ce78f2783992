"""Distribution metrics for judging samples against reference data.

- :func:`distance_histogram`: h(r), the density-normalised histogram of all interatomic
  distances (1/Å), and :func:`histogram_mae`, ∫|h − h_ref| dr (dimensionless, 0 … 2);
- :func:`ks_test`: two-sample Kolmogorov–Smirnov statistic and p-value (scipy);
- :func:`mmd`: maximum mean discrepancy with a Gaussian kernel and the median-distance bandwidth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy import stats

from .geometry import pair_distances


def distance_histogram(structures: Sequence[Atoms], r_max: float = 6.0, bins: int = 300,
                       distances: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """h(r) over all frames and atom pairs: (bin centres in Å, density in 1/Å integrating to 1 on [0, r_max])."""
    d = pair_distances(structures) if distances is None else distances
    edges = np.linspace(0.0, r_max, bins + 1)
    counts, _ = np.histogram(d.ravel(), bins=edges)
    width = edges[1] - edges[0]
    total = counts.sum()
    density = counts / (total * width) if total else np.zeros(bins)
    return 0.5 * (edges[1:] + edges[:-1]), density


def histogram_mae(r: np.ndarray, h: np.ndarray, h_ref: np.ndarray) -> float:
    """∫|h(r) − h_ref(r)| dr over the common grid ``r`` (Å): 0 for equal densities, 2 for disjoint ones."""
    width = float(r[1] - r[0]) if len(r) > 1 else 1.0
    return float(np.abs(h - h_ref).sum() * width)


def ks_test(samples: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value of 1-D samples (any unit, the same for both)."""
    samples = np.asarray(samples, dtype=float).ravel()
    reference = np.asarray(reference, dtype=float).ravel()
    samples, reference = samples[np.isfinite(samples)], reference[np.isfinite(reference)]
    if len(samples) == 0 or len(reference) == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(samples, reference)
    return float(result.statistic), float(result.pvalue)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """Median pairwise Euclidean distance of the pooled samples (the usual MMD kernel width)."""
    pooled = np.concatenate([x, y])
    sq = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1)
    d = np.sqrt(sq[np.triu_indices(len(pooled), k=1)])
    med = float(np.median(d)) if len(d) else 1.0
    return med if med > 0 else 1.0


def mmd(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None, max_samples: int = 1000,
        seed: int = 0) -> float:
    """Unbiased MMD² between sample sets ``x`` (n, d) and ``y`` (m, d), Gaussian kernel
    k(a, b) = exp(−|a − b|² / (2 h²)) with h the median pairwise distance unless given.

    Sets larger than ``max_samples`` are subsampled (seeded) to keep the cost O(max_samples²).
    """
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        x = x[rng.choice(len(x), max_samples, replace=False)]
    if len(y) > max_samples:
        y = y[rng.choice(len(y), max_samples, replace=False)]
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)

    def kernel(a, b):
        sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-sq / (2 * h * h))

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    n, m = len(x), len(y)
    term_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(term_x + term_y - 2 * kxy.mean())
