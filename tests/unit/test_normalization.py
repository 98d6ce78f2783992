"""Per-element reference energies: which compositions the training data fixes the energy zero of (issue 39)."""

import warnings

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.data.compositions import formula_of, outside_span, spanning_compositions
from boltzmatch.data.labels import make_structure
from boltzmatch.training.normalization import fit_normalization, training_compositions


def _frames(names):
    out = []
    for k, name in enumerate(names):
        atoms = molecule(name)
        out.append(make_structure(atoms.numbers, atoms.positions, energy=-10.0 * len(atoms) - k,
                                  forces=np.zeros((len(atoms), 3))))
    return AtomsBatch.from_atoms(out, dtype=torch.float64)


def test_one_molecules_frames_fix_only_its_own_energy_zero_and_training_stays_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fact of every single-molecule data set, not a warning (it was, each run)
        fit_normalization(_frames(["CH3CH2OH"] * 4), [1, 6, 8])
    assert training_compositions(_frames(["CH3CH2OH"] * 4), [1, 6, 8]) == ["C2H6O"]
    # three independent compositions of H, C, O fix all three element energies: nothing to record
    assert training_compositions(_frames(["CH3CH2OH", "CH4", "H2O", "CH3OH"]), [1, 6, 8]) is None
    # a fine-tuning's own frames add to its parent's
    assert training_compositions(_frames(["CH4", "H2O"]), [1, 6, 8], ["C2H6O"]) is None
    assert training_compositions(_frames(["CH4"] * 2), [1, 6, 8], ["C2H6O"]) == ["C2H6O", "CH4"]


def test_the_span_of_compositions_decides_whose_energy_zero_is_fixed():
    assert spanning_compositions(["C2H6O", "C4H12O2", "C2H6O"]) == ["C2H6O"]  # a dimer is in the span
    assert spanning_compositions(["Cu4", "Cu32"]) is None  # one element: always fixed
    assert spanning_compositions(["CH4", "C2H6"]) is None  # two independent rows, two elements
    assert outside_span(["C2H6O"], ["C2H6O", "C4H12O2", "CH4O", "C7H8", "C2H6O"]) == ["CH4O", "C7H8"]
    # CH4 and H2O fix E_C + 4 E_H and 2 E_H + E_O: C2H8 (2 CH4) and CH6O (CH4 + H2O) are fixed, CH2O is not
    assert outside_span(["CH4", "H2O"], ["C2H8", "CH6O", "CH2O"]) == ["CH2O"]
    assert outside_span(["C2H6O"], ["C2H6OS"]) == ["C2H6OS"]  # an element the training frames lack
    assert formula_of(molecule("CH3CH2OH").numbers) == "C2H6O"


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


def test_settling_the_open_offsets_keeps_every_training_energy_and_takes_the_reference_for_the_rest():
    """P E + (1 − P) E_ref: one molecule's energies exactly as before, a lone atom's the reference's where the
    training compositions leave its element open (here every element: one composition fixes one combination)."""
    from boltzmatch.models import build_model
    from boltzmatch.training.normalization import element_offsets, settle_open_offsets

    model = build_model({"name": "schnet", "n_interactions": 1, "n_features": 8, "n_rbf": 8, "cutoff": 4.0,
                         "elements": [1, 6, 8]}).double()
    model.set_normalization({1: -7.0, 6: -20.0, 8: -5.0}, 1.0)
    train = _frames(["CH3CH2OH"] * 3)
    before = model(train).detach()
    reference = {1: -10.7, 6: -48.8, 8: -102.6}
    change = settle_open_offsets(model, ["C2H6O"], [1, 6, 8], reference)
    torch.testing.assert_close(model(train).detach(), before, rtol=0, atol=1e-9)
    offsets = element_offsets(model, [1, 6, 8]).numpy()
    n = np.array([6.0, 2.0, 1.0])  # H, C, O of ethanol
    wanted = np.array([-10.7, -48.8, -102.6])
    # what is left of the reference is along ethanol's composition only: offsets − E_ref ∥ n
    residual = offsets - wanted
    np.testing.assert_allclose(residual - n * (residual @ n) / (n @ n), 0.0, atol=1e-9)
    assert change > 10.0
    # two compositions of C and H fix both: nothing is open, nothing moves
    model.set_normalization({1: -7.0, 6: -20.0, 8: -5.0}, 1.0)
    assert settle_open_offsets(model, ["CH4", "C2H6"], [1, 6], {1: 0.0, 6: 0.0}) == pytest.approx(0.0)


def test_element_energies_spec_forms_and_their_one_line_errors():
    from boltzmatch.errors import BoltzmatchError
    from boltzmatch.training.settings import parse_element_energies

    assert parse_element_energies(None) is None and parse_element_energies("least-squares") is None
    assert parse_element_energies("xtb") == "xtb"
    assert parse_element_energies("H=-10.7, C=-48.8") == {"H": -10.7, "C": -48.8}
    assert parse_element_energies({1: -10.7, "O": -102.6}) == {"H": -10.7, "O": -102.6}
    for spec, message in (("H:1", "expected auto, least-squares, xtb, emt"), ("Hx=1", "'Hx' is not an element symbol"),
                          ("H=abc", "H='abc' is not a number of eV")):
        with pytest.raises(BoltzmatchError, match=message):
            parse_element_energies(spec)
