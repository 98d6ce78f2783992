"""Per-element reference energies: a warning where the data cannot determine them (issue 39)."""

import warnings

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.data.labels import make_structure
from boltzmatch.training.normalization import fit_normalization


def test_one_composition_warns_that_element_energies_are_undetermined():

    def frames(names):
        out = []
        for k, name in enumerate(names):
            atoms = molecule(name)
            out.append(make_structure(atoms.numbers, atoms.positions, energy=-10.0 * len(atoms) - k,
                                      forces=np.zeros((len(atoms), 3))))
        return AtomsBatch.from_atoms(out, dtype=torch.float64)

    with pytest.warns(UserWarning, match="determine 1 of the 3 element energies"):
        fit_normalization(frames(["CH3CH2OH"] * 4), [1, 6, 8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three compositions of H, C, O determine all three: no warning
        fit_normalization(frames(["CH3CH2OH", "CH4", "H2O", "CH3OH"]), [1, 6, 8])


def test_the_energy_zero_fit_is_the_median_not_the_mean_where_a_few_frames_are_far_off():
    """refine's labels sit eV above anything thermal where the model is eV wrong: least squares would move every
    frame's zero by their mean. One composition: the fit is the median residual per molecule; several: the
    least-absolute-deviations fit, which recovers exact per-element offsets through outliers."""
    from boltzmatch.training.normalization import least_absolute_offsets

    rng = np.random.default_rng(0)
    counts = np.tile([[6.0, 2.0, 1.0]], (101, 1))  # ethanol's H, C, O
    residual = rng.normal(0.3, 0.02, 101)
    residual[:10] += 5.0  # ten frames 5 eV off
    delta = least_absolute_offsets(counts, residual)
    assert counts[0] @ delta == pytest.approx(np.median(residual), abs=1e-6)
    assert abs(counts[0] @ np.linalg.lstsq(counts, residual, rcond=None)[0] - 0.3) > 0.4  # the mean: 0.5 eV off
    mixed = rng.integers(0, 9, size=(200, 3)).astype(float)
    truth = np.array([-0.5, -1.0, -2.0])
    values = mixed @ truth + rng.normal(0, 1e-3, 200)
    values[:15] += 8.0
    np.testing.assert_allclose(least_absolute_offsets(mixed, values), truth, atol=2e-3)
