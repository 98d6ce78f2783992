"""One molecule's frames fix only its own energy zero: training records it quietly, evaluate warns where it matters.

The per-element split of the energy zero is arbitrary when every training frame has one composition; it used to be a
warning on every single-molecule training (most runs), where it changes nothing. Now the run records the
compositions that fix it and ``evaluate`` warns on data outside their span, whose energy errors carry the offset.
"""

import re
import warnings

import pytest

import boltzmatch
from boltzmatch.analysis.compare import compare, format_comparison
from boltzmatch.data import write_structures
from helpers import labelled_molecules


@pytest.fixture
def ethanol_run(tmp_path, ethanol_xtb):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        summary = boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="linear",
                                   config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form", objective="energy",
                                   ridge=1e-8, progress=False)
    return tmp_path / "run", summary


def test_a_single_molecule_run_records_the_compositions_that_fix_its_energy_zero(ethanol_run):
    run, summary = ethanol_run
    assert boltzmatch.runs.run_dir.read_config(run)["normalization"]["compositions"] == ["C2H6O"]
    assert summary["energy_zero_fixed_for"] == ["C2H6O"]
    assert re.search(r"energy zero fixed only for +C2H6O\n", (run / "summary.txt").read_text())


def test_evaluate_warns_only_on_compositions_whose_energy_zero_no_training_frame_fixed(ethanol_run, ethanol_xtb,
                                                                                      tmp_path):
    run, _ = ethanol_run
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        same = boltzmatch.evaluate(run, ethanol_xtb)
    assert "energy_zero_unfixed" not in same
    other = tmp_path / "other.xyz"
    write_structures(other, labelled_molecules(3, name="CH3OH") + labelled_molecules(2, name="CH3CH2OH"))
    with pytest.warns(UserWarning, match=r"other.xyz: the energy zero of CH4O is not fixed by the training "
                                         r"compositions of run \(C2H6O\)"):
        result = boltzmatch.evaluate(run, other)
    assert result["energy_zero_unfixed"] == ["CH4O"]


def test_compare_names_the_compositions_whose_energy_zero_a_model_left_open(ethanol_run, tmp_path):
    run, _ = ethanol_run
    other = tmp_path / "methanol.xyz"
    write_structures(other, labelled_molecules(3, name="CH3OH"))
    with pytest.warns(UserWarning, match="methanol.xyz: the energy zero of CH4O is not fixed"):
        result = compare([run], other, out=tmp_path / "cmp", progress=False)
    assert result["models"]["run"]["energy_zero_unfixed"] == ["CH4O"]
    assert re.search(r"energy zero not fixed by training for +CH4O\n", format_comparison(result))
