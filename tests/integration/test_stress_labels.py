"""Stress labels of crystals: generate records EMT's stress (eV/Å³), extxyz and db keep it, and evaluate reports
the model's stress error, the same number the ASE calculator's stress gives frame by frame."""

import numpy as np
import pytest
from ase.calculators.emt import EMT

from boltzmatch.analysis.evaluate import evaluate, format_evaluation
from boltzmatch.data import generate, read_structures, write_structures
from boltzmatch.data.labels import stress_of
from boltzmatch.simulate import BoltzmatchCalculator
from boltzmatch.training import train
from boltzmatch.training.settings import DEFAULT_STRESS_WEIGHT
from boltzmatch.units import GPA_PER_EV_A3


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
    some = tmp_path / "some-stress.xyz"  # every other frame labelled: the errors of those (it needed all before)
    write_structures(some, [f if i % 2 == 0 else _without_stress(f) for i, f in enumerate(frames)])
    assert evaluate(run, some)["stress_mae"] == pytest.approx(np.abs(errors[::2]).mean(), rel=1e-4)


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


@pytest.fixture(scope="module")
def copper_volumes(tmp_path_factory):
    """EMT Cu (32 atoms, 600 K) at two lattice constants (3.52 and 3.66 Å, seed 0) to train on, and a third
    between them (3.59 Å, seed 7) held out."""
    from ase.build import bulk
    from ase.io import write

    folder = tmp_path_factory.mktemp("volumes")
    frames = {}
    for a, seed in ((3.52, 0), (3.66, 0), (3.59, 7)):
        start = folder / f"cu_{a}.xyz"
        write(start, bulk("Cu", "fcc", a=a, cubic=True).repeat((2, 2, 2)))
        generate(str(start), calculator="emt", temperature=600, time=0.15, interval=10, equilibration=100,
                 seed=seed, out=folder / f"md_{a}.xyz", progress=False)
        frames[a] = read_structures(folder / f"md_{a}.xyz")
    for frame in frames[3.52] + frames[3.66]:
        frame.info.pop("time_ps")  # two trajectories in one file
    write_structures(folder / "train.xyz", frames[3.52] + frames[3.66])
    return folder / "train.xyz", folder / "md_3.59.xyz"


def test_training_on_crystals_fits_their_stress_by_default(copper_volumes, tmp_path):
    """Crystals with stress labels train on them unless told (the default stress weight, on the virial per atom):
    on a held-out volume the stress error falls well below that of the same training without the term (measured
    here: 2.5 against 5.2 GPa)."""
    from boltzmatch.runs import run_dir as rd

    train_file, held_out = copper_volumes
    options = dict(model="schnet", config={"n_features": 16, "n_interactions": 1, "cutoff": 4.0}, epochs=15,
                   batch_size=8, progress=False)
    summary = train(str(train_file), out=tmp_path / "with", **options)
    train(str(train_file), out=tmp_path / "without", stress_weight=0.0, **options)
    assert rd.read_config(tmp_path / "with")["training"]["stress_weight"] == DEFAULT_STRESS_WEIGHT
    assert rd.read_config(tmp_path / "without")["training"]["stress_weight"] == 0.0
    assert "train_stress_loss" in (tmp_path / "with" / "metrics.csv").read_text().splitlines()[0]
    assert "stress MAE (GPa)" in (tmp_path / "with" / "summary.txt").read_text()
    n = len(read_structures(train_file))  # the table says the term is on, and over how many structures
    assert (summary["stress_weight"], summary["n_stress"], summary["n_structures"]) == (DEFAULT_STRESS_WEIGHT, n, n)
    lines = (tmp_path / "with" / "summary.txt").read_text().splitlines()
    row = next(line for line in lines if line.startswith("stress weight (structures with a stress)"))
    assert row.split()[-4:] == [f"{DEFAULT_STRESS_WEIGHT:g}", f"({n}", "of", f"{n})"]
    assert not any(line.startswith("stress weight") for line in (tmp_path / "without" / "summary.txt")
                   .read_text().splitlines())
    with_stress = evaluate(tmp_path / "with", held_out)["stress_mae"]
    without = evaluate(tmp_path / "without", held_out)["stress_mae"]
    assert with_stress < 0.7 * without
    # the training summary's test error is evaluate's on the same frames
    from boltzmatch.data.splits import Split

    test = Split.load(tmp_path / "with" / "split.npz").test
    frames = [read_structures(train_file)[i] for i in test]
    write_structures(tmp_path / "test.xyz", frames)
    assert summary["test_stress_mae_GPa"] == pytest.approx(GPA_PER_EV_A3 * evaluate(tmp_path / "with",
                                                                                   tmp_path / "test.xyz")
                                                           ["stress_mae"], rel=1e-4)


def test_a_stress_weight_that_cannot_apply_is_a_one_line_error(copper, tmp_path, capsys):
    from boltzmatch.cli.main import main

    unlabelled = tmp_path / "no-stress.xyz"
    write_structures(unlabelled, [_without_stress(f) for f in read_structures(copper)])
    for argv, message in (([str(unlabelled), "--stress-weight", "1"], "no-stress.xyz: no structure has a stress"),
                          ([str(copper), "--objective", "ism", "--temperature", "600", "--stress-weight", "1"],
                           "stress-weight goes with the objectives energy, forces, energy-forces")):
        assert main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
        assert not (tmp_path / "run").exists()


def test_labelling_for_refine_records_a_crystals_stress(copper):
    """refine's labels carry the stress too, so that its fine-tunes keep training on it (they had energy and
    forces only, and the stress term reads only the frames that carry one)."""
    import io

    from ase.io import read

    from boltzmatch.data.labelling import label_texts

    frames = read_structures(copper)[:2]
    for frame, text in zip(frames, label_texts([("emt", f) for f in frames]), strict=True):
        np.testing.assert_allclose(stress_of(read(io.StringIO(text), format="extxyz")), stress_of(frame), atol=1e-9)


def test_fisher_fine_tuning_of_crystals_keeps_the_stress_term(copper, tmp_path):
    """finetune --objective fisher (refine's default) weighs the stress of stress-labelled crystals as
    energy-forces does; without it a refine on EMT Cu moved the held-out stress MAE from 1.3 to 2.0 GPa."""
    from boltzmatch.runs import run_dir as rd
    from boltzmatch.training import finetune

    parent = tmp_path / "parent"
    train(str(copper), model="schnet", config={"n_features": 8, "n_interactions": 1, "cutoff": 4.0}, epochs=1,
          out=parent, progress=False)
    summary = finetune(parent, data=str(copper), out=tmp_path / "tuned", objective="fisher", temperature=600.0,
                       epochs=1, progress=False)
    assert rd.read_config(tmp_path / "tuned")["training"]["stress_weight"] == DEFAULT_STRESS_WEIGHT
    assert "train_stress_loss" in (tmp_path / "tuned" / "metrics.csv").read_text().splitlines()[0]
    assert summary["val_stress_mae_GPa"] > 0
