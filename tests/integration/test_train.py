"""Training, run directories, evaluation, resume, distributed training, one-line errors."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from ase.build import molecule

import boltzmatch
from boltzmatch.data import make_structure, read_structures, write_structures
from boltzmatch.errors import BoltzmatchError
from helpers import kill_at_call

SMALL = {
    "schnet": {"n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0},
    "painn": {"n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0},
    "mlp": {"hidden": [16], "n_rbf": 6, "cutoff": 4.0},
    "linear": {"n_rbf": 6, "cutoff": 4.0},
}


@pytest.mark.parametrize("name", list(SMALL))
def test_train_writes_run_dir_and_learns(tmp_path, ethanol_xtb, name):
    summary = boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model=name, config=SMALL[name], epochs=4,
                               batch_size=8, lr=3e-3, progress=False)
    run = tmp_path / "run"
    for f in ("config.yaml", "model.pt", "checkpoint.pt", "metrics.csv", "split.npz", "summary.txt"):
        assert (run / f).exists(), f
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 4 and "val_force_mae_meV_A" in rows[0] and "val_energy_mae_meV_atom" in rows[0]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    config = yaml.safe_load(open(run / "config.yaml"))
    assert config["model"]["name"] == name and config["model"]["elements"] == [1, 6, 8]
    model = boltzmatch.load(run)
    result = boltzmatch.evaluate(run, ethanol_xtb)
    assert result["n_structures"] == 60
    assert result["force_mae"] * 1000 == pytest.approx(
        (summary["val_force_mae_meV_A"] * 6 + summary["test_force_mae_meV_A"] * 6
         + 48 * result["force_mae"] * 1000) / 60, rel=0.5)
    assert isinstance(model, torch.nn.Module)
    # the energy zero is refitted on the training split (its median residual: one molecule): a network's initial
    # zero is eV off, and the energy loss weighed beside forces does not pull it back in a few epochs
    import numpy as np

    from boltzmatch.data.packed import PackedStructures

    train = np.load(run / "split.npz")["train"]
    batch = PackedStructures(read_structures(ethanol_xtb), dtype=torch.float64).batch(train)
    with torch.no_grad():
        residual = batch.energy - model.double()(batch)
    middle = residual.sort().values[(len(residual) - 1) // 2:len(residual) // 2 + 1]  # any zero between them is
    assert float(middle[0]) - 2e-3 <= 0.0 <= float(middle[-1]) + 2e-3, middle  # a least-absolute fit


def test_evaluate_cli_json_and_plots(tmp_path, ethanol_xtb):
    boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="schnet", config=SMALL["schnet"], epochs=1,
                     progress=False)
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "evaluate", str(tmp_path / "run"), str(ethanol_xtb),
                             "--json", "--out", str(tmp_path / "eval")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("n_structures", "energy_mae", "energy_rmse", "force_mae", "force_rmse"):
        assert key in data
    assert set(data["force_mae_per_element"]) == {"H", "C", "O"}
    assert (tmp_path / "eval" / "parity_forces.png").stat().st_size > 1000


def test_resume_after_kill_matches_uninterrupted(tmp_path, ethanol_xtb):
    args = ["--model", "schnet", "--config", str(tmp_path / "m.yaml"), "--epochs", "6", "--batch-size", "8",
            "--seed", "5", "--quiet"]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "schnet", **SMALL["schnet"]}))
    full = subprocess.run([sys.executable, "-m", "boltzmatch", "train", str(ethanol_xtb), "--out",
                           str(tmp_path / "full"), *args], capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    # SIGKILL when the run's files are written the second time: at the end of epoch 2, or later when short
    # epochs wait for their files (training/run_files.py); the epochs since the first write are lost
    kill_at_call("boltzmatch.training.run_files:RunFiles.write", 2,
                 ["train", str(ethanol_xtb), "--out", str(tmp_path / "killed"), *args])
    done = len((tmp_path / "killed" / "metrics.csv").read_text().strip().splitlines()) - 1
    assert done == 1
    resumed = subprocess.run([sys.executable, "-m", "boltzmatch", "train", "--resume", str(tmp_path / "killed"),
                              "--quiet"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "full" / "model.pt")
    b = torch.load(tmp_path / "killed" / "model.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    rows_a = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 7


TWO_GPUS = [pytest.mark.gpu, pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs a GPU per process")]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=TWO_GPUS)])
def test_distributed_two_processes(tmp_path, ethanol_xtb, device):
    """Two torchrun processes: gloo on CPUs, NCCL on GPUs (each process on the GPU of its LOCAL_RANK)."""
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "boltzmatch", "train", str(ethanol_xtb),
         "--model", "schnet", "--config", str(_write_config(tmp_path)), "--epochs", "3", "--batch-size", "8",
         "--out", str(tmp_path / "ddp"), "--quiet", "--device", device],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Training summary") == 1  # rank 0 alone reports
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    boltzmatch.load(tmp_path / "ddp")


def _write_config(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"name": "schnet", **SMALL["schnet"]}))
    return path


def test_one_line_errors(tmp_path, ethanol_xtb):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: schnet\nn_feature: 12\n")
    with pytest.raises(BoltzmatchError, match=r"bad.yaml: unknown key 'n_feature' for schnet; allowed keys: name"):
        boltzmatch.train(ethanol_xtb, out=tmp_path / "r", config=bad, epochs=1, progress=False)
    unlabelled = tmp_path / "positions.xyz"
    write_structures(unlabelled, [make_structure(a.numbers, a.positions) for a in read_structures(ethanol_xtb)])
    with pytest.raises(BoltzmatchError, match=r"positions.xyz, structure 0: has no energy; this task needs energy"):
        boltzmatch.train(unlabelled, out=tmp_path / "r", objective="energy-forces", epochs=1, progress=False)
    boltzmatch.train(ethanol_xtb, out=tmp_path / "ok", config=SMALL["schnet"], epochs=1, progress=False)
    water = make_structure(molecule("NH3").numbers, molecule("NH3").positions, energy=-1.0, forces=[[0, 0, 0]] * 4)
    write_structures(tmp_path / "nh3.xyz", [water])
    with pytest.raises(BoltzmatchError, match=r"element\(s\) N not seen in training; the model knows H, C, O"):
        boltzmatch.evaluate(tmp_path / "ok", tmp_path / "nh3.xyz")


def test_cli_errors_are_one_line(tmp_path, ethanol_xtb):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: schnet\nwidth: 3\n")
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "train", str(ethanol_xtb), "--config", str(bad),
                             "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "unknown key 'width'" in result.stderr


def test_an_epoch_row_on_disk_always_has_its_checkpoint(tmp_path, ethanol_xtb, monkeypatch):
    """A kill between writing metrics.csv and checkpoint.pt left an epoch row with nothing to resume
    from (seen in CI: `generative train --resume` said "no checkpoint.pt"). The checkpoint now comes first:
    a crash while saving it leaves no row behind."""
    from boltzmatch.runs import run_dir as rd

    save = rd.save_torch

    def crash_on_checkpoint(obj, path):
        if path.name == rd.CHECKPOINT:
            raise KeyboardInterrupt
        save(obj, path)

    monkeypatch.setattr(rd, "save_torch", crash_on_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="schnet", config={"n_features": 8,
                         "n_interactions": 1}, epochs=2, progress=False)
    assert rd.read_metrics(tmp_path / "run") == []
