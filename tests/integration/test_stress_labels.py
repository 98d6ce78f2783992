"""Stress labels of crystals: generate records EMT's stress (eV/Å³), extxyz and db keep it, and evaluate reports
the model's stress error, the same number the ASE calculator's stress gives frame by frame."""

import numpy as np
import pytest
from ase.calculators.emt import EMT

from boltzmatch.analysis.evaluate import GPA_PER_EV_A3, evaluate, format_evaluation
from boltzmatch.data import generate, read_structures, write_structures
from boltzmatch.data.labels import stress_of
from boltzmatch.simulate import BoltzmatchCalculator
from boltzmatch.training import train


@pytest.fixture(scope="module")
def copper(tmp_path_factory):
    path = tmp_path_factory.mktemp("copper") / "cu.xyz"
    generate("Cu-fcc-2x2x2", calculator="emt", temperature=600, time=0.1, interval=10, equilibration=20, seed=0,
             out=path, progress=False)
    return path


def test_generated_crystal_frames_carry_the_reference_stress(copper, tmp_path):
    frames = read_structures(copper)
    check = frames[-1].copy()
    check.calc = EMT()
    np.testing.assert_allclose(stress_of(frames[-1]), check.get_stress(), atol=1e-9)
    from boltzmatch.data.summary import summarize

    assert summarize(frames)["labels"] == ["energy", "forces", "stress"]
    write_structures(tmp_path / "cu.db", frames)  # the db keeps it too
    np.testing.assert_allclose(stress_of(read_structures(tmp_path / "cu.db")[-1]), stress_of(frames[-1]), atol=1e-12)


def test_evaluate_reports_the_stress_error_the_calculator_gives(copper, tmp_path):
    run = tmp_path / "run"
    train(str(copper), model="schnet", config={"n_features": 8, "n_interactions": 1, "cutoff": 4.0}, epochs=1,
          out=run, progress=False)
    result = evaluate(run, copper)
    frames = read_structures(copper)
    calculator = BoltzmatchCalculator(run)
    errors = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calculator
        errors.append(atoms.get_stress() - stress_of(frame))
    assert result["stress_mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-4)
    assert f"{GPA_PER_EV_A3 * result['stress_mae']:.4g}"[:4] in format_evaluation(result)
    from boltzmatch.analysis.compare import compare

    compared = compare([run], copper, out=tmp_path / "report", progress=False)
    assert compared["models"]["run"]["stress_mae_GPa"] == pytest.approx(GPA_PER_EV_A3 * result["stress_mae"])
    assert "| stress MAE (GPa) |" in (tmp_path / "report" / "report.md").read_text()
    unlabelled = tmp_path / "no-stress.xyz"  # the same frames without stress labels: no stress rows
    write_structures(unlabelled, [_without_stress(f) for f in frames])
    assert "stress_mae" not in evaluate(run, unlabelled)


def _without_stress(frame):
    from boltzmatch.data.labels import attach_labels, energy_of, forces_of

    return attach_labels(frame.copy(), energy_of(frame), forces_of(frame))


def test_a_malformed_stress_is_a_one_line_error_naming_the_file(tmp_path):
    from boltzmatch.errors import BoltzmatchError

    path = tmp_path / "bad.xyz"
    path.write_text('1\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3 stress="1 2 3 4" pbc="T T T"\n'
                    "Cu 0 0 0\n")
    with pytest.raises(BoltzmatchError, match="bad.xyz: could not be parsed as extxyz .*stress"):
        read_structures(path)
