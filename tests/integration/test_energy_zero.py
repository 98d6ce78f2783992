"""One molecule's frames fix only its own energy zero: training records it quietly, evaluate warns where it matters.

The per-element split of the energy zero is arbitrary when every training frame has one composition; it used to be a
warning on every single-molecule training (most runs), where it changes nothing. Now the run records the
compositions that fix it and ``evaluate`` warns on data outside their span, whose energy errors carry the offset.
"""

import re
import warnings

import numpy as np
import pytest

import boltzmatch
from boltzmatch.analysis.compare import compare, format_comparison
from boltzmatch.data import write_structures
from boltzmatch.training.normalization import element_offsets
from helpers import labelled_molecules


@pytest.fixture
def ethanol_run(tmp_path, ethanol_xtb):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        summary = boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="linear",
                                   config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form", objective="energy",
                                   ridge=1e-8, progress=False, element_energies="least-squares")
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


@pytest.mark.parametrize("model", ["linear", "schnet"])
def test_isolated_atom_energies_fix_only_what_the_training_compositions_leave_open(model, ethanol_xtb, tmp_path):
    """--element-energies xtb (MACE's E0s): the training frames' energies stay exactly as least squares gives them;
    the open part of the per-element energies becomes GFN2-xTB's isolated atoms', so no warning on other molecules."""
    from boltzmatch.analysis.evaluate import predict_frames
    from boltzmatch.data import read_structures
    from boltzmatch.data.reference_md import isolated_atom_energies

    options = dict(model=model, epochs=2, batch_size=16, progress=False, objective="energy")
    options.update(config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form") if model == "linear" else \
        options.update(config={"n_interactions": 1, "n_features": 8, "n_rbf": 8, "cutoff": 4.0})
    boltzmatch.train(ethanol_xtb, out=tmp_path / "ls", element_energies="least-squares", **options)
    summary = boltzmatch.train(ethanol_xtb, out=tmp_path / "xtb", **options)  # auto: generate's frames say xtb
    assert summary["open_energy_zero_from"] == "xtb isolated atoms"
    config = boltzmatch.runs.run_dir.read_config(tmp_path / "xtb")
    assert config["training"]["element_energies"] == "xtb"  # auto, resolved and recorded
    reference = isolated_atom_energies("xtb", [1, 6, 8])
    assert config["normalization"]["reference_energies"] == pytest.approx(reference)
    if model == "schnet":  # a fine-tune keeps its parent's energy zero and says where it came from
        tuned = boltzmatch.finetune(tmp_path / "xtb", data=ethanol_xtb, out=tmp_path / "tuned", epochs=1,
                                    progress=False)
        assert tuned["open_energy_zero_from"] == "xtb isolated atoms"
        assert boltzmatch.runs.run_dir.read_config(tmp_path / "tuned")["normalization"]["reference_energies"] == \
            pytest.approx(reference)
    assert config["normalization"]["compositions"] == ["C2H6O"]  # what the reference must leave as fitted
    frames = read_structures(ethanol_xtb)
    energy_ls, forces_ls = predict_frames(tmp_path / "ls", frames)
    energy_xtb, forces_xtb = predict_frames(tmp_path / "xtb", frames)
    np.testing.assert_allclose(energy_xtb, energy_ls, atol=2e-3)  # float32 sums of ~300 eV
    np.testing.assert_allclose(forces_xtb, forces_ls, atol=1e-5)
    # the per-element energies: ethanol's combination (the span P) as least squares left it, the rest the reference's
    counts = np.array([[6.0, 2.0, 1.0]])  # ethanol: H, C, O
    span = np.linalg.pinv(counts) @ counts
    offsets = {name: element_offsets(boltzmatch.load(tmp_path / name), [1, 6, 8]).detach().double().numpy()
               for name in ("ls", "xtb")}
    wanted = np.array([reference[1], reference[6], reference[8]])
    np.testing.assert_allclose(span @ offsets["xtb"], span @ offsets["ls"], atol=1e-3)
    np.testing.assert_allclose((np.eye(3) - span) @ offsets["xtb"], (np.eye(3) - span) @ wanted, atol=1e-3)
    assert np.abs((np.eye(3) - span) @ (wanted - offsets["ls"])).max() > 1.0  # the open part moved by eV
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        other = tmp_path / "methanol.xyz"
        write_structures(other, labelled_molecules(2, name="CH3OH"))
        assert "energy_zero_unfixed" not in boltzmatch.evaluate(tmp_path / "xtb", other)



def test_bad_element_energies_are_one_line_naming_the_option_and_leave_no_run(ethanol_xtb, tmp_path, capsys):
    from ase.build import molecule

    from boltzmatch.cli.main import main

    bare = tmp_path / "bare.xyz"
    write_structures(bare, [molecule("CH3CH2OH")] * 4)  # positions only
    cases = [([str(ethanol_xtb), "--element-energies", "H=-10.7,C=-48.8"], "no value for O"),
             ([str(ethanol_xtb), "--element-energies", "dft"], "expected auto, least-squares, xtb, emt"),
             ([str(bare), "--objective", "dsm", "--temperature", "500", "--sigma", "0.01",
               "--element-energies", "xtb"],
              "has no energies")]
    for argv, message in cases:
        out = tmp_path / "run"
        assert main(["train", *argv, "--model", "linear", "--epochs", "1", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--element-energies" in err and message in err, err
        assert not out.exists()


def test_auto_takes_the_isolated_atoms_of_the_method_every_frame_names_and_least_squares_otherwise(ethanol_xtb):
    from boltzmatch.data import read_structures
    from boltzmatch.training.prepare import auto_element_energies

    frames = read_structures(ethanol_xtb)
    assert {a.info["reference_method"] for a in frames} == {"xtb"}  # generate records its method
    assert auto_element_energies(frames) == "xtb"
    assert auto_element_energies(labelled_molecules(3)) is None  # no method named
    mixed = frames[:2] + labelled_molecules(1)
    mixed[-1].info["reference_method"] = "emt"
    assert auto_element_energies(mixed) is None  # two methods: no one zero
    openmm = [a.copy() for a in frames[:2]]
    for a in openmm:
        a.info["reference_method"] = "openmm"
    assert auto_element_energies(openmm) is None  # a force field's atoms have no energy


def test_labels_made_here_name_their_method_and_files_keep_it(tmp_path):
    """refine's labels (label_frames) and any file boltzmatch writes carry info["reference_method"], which the
    readers keep: the frames of a refine round say xtb as generate's do."""
    from ase.build import molecule

    from boltzmatch.data import read_structures
    from boltzmatch.data.labelling import label_frames

    frames = [molecule("CH3CH2OH") for _ in range(2)]
    frames[1].positions += 0.01
    frames[0].info["reference_method"] = "emt"  # whatever made the positions, the labels are xtb's
    label_frames(frames, tmp_path / "labelled.xyz", "xtb", progress=False)
    labelled = read_structures(tmp_path / "labelled.xyz")
    assert [a.info["reference_method"] for a in labelled] == ["xtb", "xtb"]
    write_structures(tmp_path / "copy.xyz", labelled)
    assert [a.info["reference_method"] for a in read_structures(tmp_path / "copy.xyz")] == ["xtb", "xtb"]


def test_the_offset_removed_error_does_not_see_the_open_part_of_the_energy_zero(ethanol_run, tmp_path):
    """Moving the per-element energies along what ethanol's frames leave open (2 c_C + 6 c_H + c_O = 0) changes no
    ethanol energy and shifts methanol's by c_C + 4 c_H: the offset-removed MAE on a file of both must not move.
    One mean over the file (before 2026-12-08) moved it by about half that shift."""
    from boltzmatch.utils.atomic import save_torch

    run, _ = ethanol_run
    mixed = tmp_path / "mixed.xyz"
    write_structures(mixed, labelled_molecules(3, name="CH3OH") + labelled_molecules(3, name="CH3CH2OH"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # methanol's zero is open: that is the point
        before = boltzmatch.evaluate(run, mixed)
        model = boltzmatch.load(run)
        from boltzmatch.training.normalization import shift_offsets

        shift_offsets(model, [1, 6, 8], np.array([1.0, -3.0, 0.0]))  # H, C, O: ethanol's sum unchanged
        save_torch(model.state_dict(), run / "model.pt")
        after = boltzmatch.evaluate(run, mixed)
    assert abs(after["energy_mae"] - before["energy_mae"]) > 0.4  # methanol (half the file) moved by 1 eV
    assert after["energy_mae_centered"] == pytest.approx(before["energy_mae_centered"], abs=1e-5)


def test_a_fine_tune_on_fewer_compositions_keeps_the_energy_zero_its_parent_fitted(tmp_path):
    """A parent trained on ethanol and methanol with given element energies fitted two of the three directions of
    its energy zero; a fine-tune on ethanol alone must settle only what neither run's frames fix. It settled the
    methanol direction back to the given values (before 2026-12-08), moving methanol's energy by electronvolts."""
    from boltzmatch.analysis.evaluate import predict_frames

    parent_data, tune_data = tmp_path / "both.xyz", tmp_path / "ethanol.xyz"
    methanol = labelled_molecules(6, seed=1, name="CH3OH")
    write_structures(parent_data, labelled_molecules(6) + methanol)
    write_structures(tune_data, labelled_molecules(6))  # the parent's ethanol frames: the refit moves little
    boltzmatch.train(parent_data, out=tmp_path / "parent", model="schnet", objective="energy", epochs=1,
                     config={"n_interactions": 1, "n_features": 8, "n_rbf": 8, "cutoff": 4.0},
                     element_energies={"H": -13.0, "C": -40.0, "O": -75.0}, progress=False)
    assert sorted(boltzmatch.runs.run_dir.read_config(tmp_path / "parent")["normalization"]["compositions"]) == \
        ["C2H6O", "CH4O"]
    boltzmatch.finetune(tmp_path / "parent", data=tune_data, out=tmp_path / "tuned", objective="energy", epochs=1,
                        lr=1e-12, progress=False)
    before, _ = predict_frames(tmp_path / "parent", methanol)
    after, _ = predict_frames(tmp_path / "tuned", methanol)
    assert np.abs(after - before).max() < 0.3  # the refit's share (0.05 eV here); the bug's 9.4 eV


def test_finetune_element_energies_fixes_what_the_least_squares_parent_left_open(ethanol_run, ethanol_xtb, tmp_path):
    """``finetune --element-energies xtb`` of a least-squares ethanol parent: ethanol's energies as before, the open
    part xTB's isolated atoms', no warning on methanol; a fine-tune of that (auto) keeps xtb. Before 2026-12-08 the
    option was taken by the Python API and silently ignored."""
    from boltzmatch.analysis.evaluate import predict_frames
    from boltzmatch.cli.main import main
    from boltzmatch.data import read_structures
    from boltzmatch.data.reference_md import isolated_atom_energies
    from boltzmatch.runs.run_dir import read_config

    parent, _ = ethanol_run
    common = ["--data", str(ethanol_xtb), "--objective", "energy", "--epochs", "1", "--quiet"]
    assert main(["finetune", str(parent), *common, "--element-energies", "xtb", "--out", str(tmp_path / "t1")]) == 0
    config = read_config(tmp_path / "t1")
    reference = isolated_atom_energies("xtb", [1, 6, 8])
    assert config["training"]["element_energies"] == "xtb"
    assert config["normalization"]["reference_energies"] == pytest.approx(reference)
    assert config["normalization"]["compositions"] == ["C2H6O"]
    assert main(["finetune", str(parent), *common, "--out", str(tmp_path / "t0")]) == 0  # auto: least squares
    assert read_config(tmp_path / "t0")["training"]["element_energies"] is None
    frames = read_structures(ethanol_xtb)
    np.testing.assert_allclose(predict_frames(tmp_path / "t1", frames)[0], predict_frames(tmp_path / "t0", frames)[0],
                               atol=2e-3)  # the same training; float32 sums of ~300 eV
    n = np.array([6.0, 2.0, 1.0])  # ethanol's H, C, O: the open part is orthogonal to it
    open_part = np.eye(3) - np.outer(n, n) / (n @ n)
    offsets = element_offsets(boltzmatch.load(tmp_path / "t1"), [1, 6, 8]).detach().double().numpy()
    np.testing.assert_allclose(open_part @ offsets, open_part @ np.array([reference[z] for z in (1, 6, 8)]),
                               atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        other = tmp_path / "methanol.xyz"
        write_structures(other, labelled_molecules(2, name="CH3OH"))
        assert "energy_zero_unfixed" not in boltzmatch.evaluate(tmp_path / "t1", other)
    assert main(["finetune", str(tmp_path / "t1"), *common, "--out", str(tmp_path / "t2")]) == 0
    assert read_config(tmp_path / "t2")["training"]["element_energies"] == "xtb"  # auto: the parent's


def test_evaluate_lists_the_errors_of_each_molecule_of_a_file_of_a_few(ethanol_run, ethanol_xtb, tmp_path):
    """A file of methanol and ethanol frames: each molecule's energy and force MAE, which recombine to the file's
    (weighted by frames and by atoms); one molecule's file lists none."""
    from boltzmatch.analysis.evaluate import format_evaluation

    run, _ = ethanol_run
    mixed = tmp_path / "mixed.xyz"
    write_structures(mixed, labelled_molecules(4, name="CH3OH") + labelled_molecules(2, name="CH3CH2OH"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # methanol's zero is open
        result = boltzmatch.evaluate(run, mixed)
    rows = result["per_composition"]
    assert list(rows) == ["CH4O", "C2H6O"] and [r["n_structures"] for r in rows.values()] == [4, 2]
    assert (4 * rows["CH4O"]["energy_mae"] + 2 * rows["C2H6O"]["energy_mae"]) / 6 == \
        pytest.approx(result["energy_mae"], rel=1e-9)
    assert (4 * 6 * rows["CH4O"]["force_mae"] + 2 * 9 * rows["C2H6O"]["force_mae"]) / (4 * 6 + 2 * 9) == \
        pytest.approx(result["force_mae"], rel=1e-9)
    assert re.search(r"CH4O \(4 frames\): energy / relative energy / force MAE +[\d.]+ / [\d.]+ / [\d.]+\n",
                     format_evaluation(result) + "\n")
    assert "per_composition" not in boltzmatch.evaluate(run, ethanol_xtb)
    from boltzmatch.analysis.evaluate import per_composition_errors

    frames = labelled_molecules(1, name="CH3OH") + labelled_molecules(1)
    assert per_composition_errors(frames, None, None, np.zeros(15, dtype=int)) == {}  # positions only: no rows
