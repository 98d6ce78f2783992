"""Bring your own model, end to end on real xTB frames: `train --model mace`, Fisher fine-tuning,
export to MACE's format, `import`, and every command taking the model file directly."""

import json
import re

import pytest
import torch

import boltzmatch
from boltzmatch.cli.main import main
from boltzmatch.data import AtomsBatch, read_structures
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models.external import EXTERNAL
from boltzmatch.runs import run_dir as rd

pytest.importorskip("mace")

SMALL = "hidden_irreps: 8x0e + 8x1o\nmax_ell: 2\ncorrelation: 2\nradial_mlp: [16, 16]\nnum_interactions: 2\n"


def test_mace_trained_finetuned_exported_imported_and_used_by_every_command(tmp_path, ethanol_xtb, capsys):
    config = tmp_path / "mace.yaml"
    config.write_text("name: mace\n" + SMALL)
    data = str(ethanol_xtb)
    assert main(["train", data, "--config", str(config), "--epochs", "2", "--out", str(tmp_path / "mse"),
                 "--quiet"]) == 0
    assert main(["finetune", str(tmp_path / "mse"), "--data", data, "--objective", "fisher", "--temperature", "500",
                 "--epochs", "2", "--out", str(tmp_path / "fisher"), "--quiet"]) == 0
    assert rd.read_config(tmp_path / "fisher")["model"]["name"] == "mace"

    exported = tmp_path / "fisher.model"
    assert main(["export", str(tmp_path / "fisher"), "--out", str(exported)]) == 0
    assert "Exported model" in capsys.readouterr().out
    assert main(["import", str(exported), "--out", str(tmp_path / "imported")]) == 0
    assert "Imported model" in capsys.readouterr().out
    assert (tmp_path / "imported" / f"{EXTERNAL}.model").is_file()

    # the run, the exported file and the imported run are one model
    frames = read_structures(data)[:4]
    batch = AtomsBatch.from_atoms(frames)
    energies = [rd.load(p)(batch).detach() for p in (tmp_path / "fisher", exported, tmp_path / "imported")]
    # float32 sums of ~310 eV in another order (the run adds its per-element energies, the file holds them inside
    # MACE's E0s): a few ulps, 3e-5 eV each; the reference's isolated atoms make the terms larger than least squares
    torch.testing.assert_close(energies[0], energies[1], rtol=2e-6, atol=0)
    torch.testing.assert_close(energies[1], energies[2], rtol=0, atol=0)

    # commands take the file directly: info, evaluate, simulate, finetune by dsm on positions alone
    assert main(["info", str(exported)]) == 0
    assert re.search(r"kind +model file\n.*energy zero +the model file's own \(its E0s\)",
                     capsys.readouterr().out, re.S)
    assert main(["evaluate", str(exported), data, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["force_mae"] > 0 and result["n_structures"] == 60
    assert main(["simulate", str(exported), "--start", data, "--out", str(tmp_path / "md"), "--replicas", "2",
                 "--time", "0.02", "--interval", "10", "--quiet", "--no-trajectories"]) == 0
    assert (tmp_path / "md" / "summary.json").is_file()
    assert main(["finetune", str(exported), "--data", data, "--objective", "dsm", "--epochs", "1",
                 "--out", str(tmp_path / "dsm"), "--quiet"]) == 0
    stored = rd.read_config(tmp_path / "dsm")
    assert stored["parent"] == str(exported) and stored["model"]["file"] == f"{EXTERNAL}.model"
    # a model config naming the file trains on from the file's weights, keeping its energy reference
    boltzmatch.train(data, out=tmp_path / "from-config", config={"name": "mace", "file": str(exported)}, epochs=1,
                     progress=False)
    assert rd.read_config(tmp_path / "from-config")["normalization"] == {"element_energy": {}, "energy_scale": 1.0}
    # ... and its E0s: xTB's isolated atoms on top would count them twice (auto resolved to them, unapplied, before)
    assert rd.read_config(tmp_path / "from-config")["training"]["element_energies"] is None
    with pytest.raises(BoltzmatchError, match="fisher.model keeps its own per-element energies"):
        boltzmatch.train(data, out=tmp_path / "e0", config={"name": "mace", "file": str(exported)}, epochs=1,
                         element_energies="xtb", progress=False)
    assert not (tmp_path / "e0").exists()


def test_export_of_a_boltzmatch_model_and_import_of_garbage_are_one_line_errors(tmp_path, ethanol_xtb, capsys):
    assert main(["train", str(ethanol_xtb), "--model", "schnet", "--epochs", "1", "--out", str(tmp_path / "s"),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "s"), "--out", str(tmp_path / "s.model")]) == 2
    assert "no foreign format to export" in capsys.readouterr().err
    assert not (tmp_path / "s.model").exists()
    (tmp_path / "junk.model").write_text("junk")
    assert main(["import", str(tmp_path / "junk.model"), "--out", str(tmp_path / "j")]) == 2
    assert "junk.model: not a model file boltzmatch can import" in capsys.readouterr().err
    assert not (tmp_path / "j").exists()


@pytest.fixture(scope="module")
def mace_run_train_output(tmp_path_factory, ethanol_xtb):
    """What MACE's own trainer writes: `mace_run_train` on 20 xTB ethanol frames, one epoch (≈ 50 s)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from ase.io import read, write

    folder = tmp_path_factory.mktemp("mace_run_train")
    frames = read(ethanol_xtb, index=":20")
    for atoms in frames:  # MACE's REF_ keys: its trainer ignores a calculator's results
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
    write(folder / "train.xyz", frames)
    script = shutil.which("mace_run_train") or str(Path(sys.executable).parent / "mace_run_train")
    subprocess.run([script, "--name", "tiny", "--train_file", str(folder / "train.xyz"), "--valid_fraction", "0.2",
                    "--E0s", "average", "--model", "MACE", "--hidden_irreps", "8x0e", "--r_max", "4.0",
                    "--batch_size", "5", "--max_num_epochs", "1", "--device", "cpu", "--default_dtype", "float64",
                    "--seed", "1", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
                    "--work_dir", str(folder / "out")], check=True, capture_output=True, cwd=folder)
    return folder / "out"


def test_the_files_mace_run_train_writes_import_or_say_what_they_are(mace_run_train_output, ethanol_xtb, tmp_path,
                                                                     capsys):
    from mace.calculators import MACECalculator

    out = mace_run_train_output
    assert main(["import", str(out / "tiny.model"), "--out", str(tmp_path / "imported")]) == 0
    model = rd.load(tmp_path / "imported").double()
    calculator = MACECalculator(model_paths=str(out / "tiny.model"), device="cpu", default_dtype="float64")
    for atoms in read_structures(ethanol_xtb)[20:23]:  # frames the model never saw
        ours = model(AtomsBatch.from_atoms([atoms], dtype=torch.float64))
        atoms = atoms.copy()
        atoms.calc = calculator
        assert abs(float(ours) - atoms.get_potential_energy()) < 1e-8
    capsys.readouterr()
    assert main(["import", str(out / "tiny_compiled.model"), "--out", str(tmp_path / "c")]) == 2
    assert "TorchScript-compiled model" in capsys.readouterr().err
    checkpoint = next((out / "checkpoints").glob("*_epoch-*.pt"))
    assert main(["import", str(checkpoint), "--out", str(tmp_path / "p")]) == 2
    assert "a training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "p").exists()
