"""--val-data: a separate structure file validates (best model, schedule, ridge) instead of a share of the data."""

import numpy as np
import pytest
import yaml

import boltzmatch
from boltzmatch.cli.main import main
from boltzmatch.data import generate, make_structure, read_structures, write_structures
from boltzmatch.training import format_train_summary
from helpers import labelled_molecules

SCHNET = {"n_features": 16, "n_interactions": 1, "n_rbf": 8, "cutoff": 4.0}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """20 xTB ethanol frames from a separately seeded trajectory (the training fixture's seed is 3)."""
    path = tmp_path_factory.mktemp("held_out") / "ethanol-held-out.xyz"
    generate("ethanol", out=path, calculator="xtb", temperature=500, time=0.1, interval=10, timestep=0.5,
             equilibration=100, seed=11, progress=False)
    return path


def test_the_validation_column_is_the_held_out_file_s_errors(ethanol_xtb, held_out, tmp_path):
    """Every frame of the file validates, the training file gives only its test share, and the validation errors
    are the best model's on that file (as evaluate finds them); the summary names the file and says that only
    the test column flatters."""
    run = tmp_path / "run"
    summary = boltzmatch.train(ethanol_xtb, out=run, model="schnet", config=SCHNET, epochs=3, val_data=held_out,
                               progress=False)
    n_data, n_held_out = len(read_structures(ethanol_xtb)), len(read_structures(held_out))
    assert summary["n_val"] == n_held_out and summary["n_test"] == round(0.1 * n_data)
    assert summary["n_train"] + summary["n_test"] == n_data
    errors = boltzmatch.evaluate(run, held_out)
    assert summary["val_force_mae_meV_A"] == pytest.approx(1000 * errors["force_mae"], rel=1e-4)
    split = np.load(run / "split.npz")
    assert sorted(split["val"]) == list(range(n_data, n_data + n_held_out))  # indices after the training file's
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["val_data"] == str(held_out)
    table = format_train_summary(summary)
    assert f"random, validation {held_out}" in table and "puts test frames femtoseconds" in table


def test_a_resumed_run_validates_on_the_same_file(ethanol_xtb, held_out, tmp_path):
    run = tmp_path / "run"
    boltzmatch.train(ethanol_xtb, out=run, model="schnet", config=SCHNET, epochs=2, val_data=held_out,
                     progress=False)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["training"]["epochs"] = 3
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    resumed = boltzmatch.train(ethanol_xtb, out=run, resume=True, progress=False)
    assert resumed["n_val"] == len(read_structures(held_out))


def test_finetune_takes_val_data(ethanol_xtb, held_out, tmp_path):
    boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="schnet", config=SCHNET, epochs=1, progress=False)
    assert main(["finetune", str(tmp_path / "run"), "--data", str(ethanol_xtb), "--objective", "fisher",
                 "--temperature", "500", "--epochs", "1", "--val-data", str(held_out), "--out",
                 str(tmp_path / "tuned"), "--quiet"]) == 0
    training = yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())["training"]
    assert training["val_data"] == str(held_out) and training["objective"] == "fisher"


def test_bad_validation_files_are_one_line_errors_and_leave_no_run(ethanol_xtb, held_out, tmp_path, capsys):
    nitrogen = tmp_path / "acetonitrile.xyz"
    write_structures(nitrogen, labelled_molecules(3, name="CH3CN"))
    no_forces = tmp_path / "energies-only.xyz"
    write_structures(no_forces, [make_structure(a.numbers, a.positions, energy=a.get_potential_energy())
                                 for a in read_structures(held_out)[:3]])
    split = tmp_path / "split.json"
    split.write_text('{"train": [0, 1, 2], "val": [3], "test": []}')
    cases = [([str(nitrogen)], [str(nitrogen), "structure 0 (C2H3N) holds N, which no training structure holds"]),
             ([str(no_forces)], [str(no_forces), "has no forces"]),
             ([str(held_out), "--split-file", str(split)], ["val-data or split-file, not both"])]
    for extra, expected in cases:
        out = tmp_path / "run"
        code = main(["train", str(ethanol_xtb), "--model", "schnet", "--epochs", "1", "--out", str(out), "--quiet",
                     "--val-data", *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert all(text in err for text in expected), err
        assert not out.exists()
