"""The one run loop: every kind of run killed in the middle of an epoch resumes to the uninterrupted weights.

The kill is a real SIGKILL of a separate process, sent from inside the training step after a fixed
number of minibatches, so it lands mid-epoch (after the first epoch's checkpoint, before the second's)
at the same place every time."""

from __future__ import annotations

import pytest
import torch
import yaml

from boltzmatch.cli.main import main
from boltzmatch.runs import run_dir as rd
from helpers import kill_at_call


def _same_weights(a, b) -> None:
    first, second = torch.load(a / rd.MODEL), torch.load(b / rd.MODEL)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert len(rd.read_metrics(a)) == len(rd.read_metrics(b))


def test_an_energy_model_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, ethanol_xtb):
    config = tmp_path / "schnet.yaml"
    config.write_text(yaml.safe_dump({"name": "schnet", "n_features": 8, "n_interactions": 1, "n_rbf": 8}))
    args = ["train", str(ethanol_xtb), "--model", "schnet", "--config", str(config), "--epochs", "3",
            "--batch-size", "8", "--seed", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    # 48 training frames: 6 minibatches an epoch (validation takes the objective from its own evaluations, no
    # call): call 10 is in epoch 2
    kill_at_call("boltzmatch.objectives.supervised:SupervisedLoss.__call__", 10,
                    [*args, "--out", str(tmp_path / "killed")])
    assert len(rd.read_metrics(tmp_path / "killed")) == 1, "the kill did not land in the second epoch"
    assert main(["train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    _same_weights(tmp_path / "whole", tmp_path / "killed")


def test_a_generative_family_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    pytest.importorskip("sklearn")
    args = ["generative", "train", "diffusion", "--data", "8gaussians", "--epochs", "3", "--batch-size", "1024",
            "--option", "hidden=[16,16]", "--seed", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    # 8gaussians' training set is 20,000 points: 20 minibatches of 1,024 an epoch, call 30 is in epoch 2
    kill_at_call("boltzmatch.generative.diffusion:Diffusion.train_step", 30,
                    [*args, "--out", str(tmp_path / "killed")])
    assert len(rd.read_metrics(tmp_path / "killed")) == 1, "the kill did not land in the second epoch"
    assert main(["generative", "train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    _same_weights(tmp_path / "whole", tmp_path / "killed")


def test_a_gflownet_killed_mid_block_resumes_to_the_same_weights(tmp_path):
    args = ["gflownet", "train", "--ndim", "2", "--height", "4", "--n-trajectories", "480", "--batch-size", "16",
            "--hidden", "16", "16", "--eval-every", "10", "--replay", "64", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    # 30 iterations in blocks of 10: the 15th loss is in the middle of the second block
    kill_at_call("boltzmatch.gflownet.train:gflownet_loss", 15, [*args, "--out", str(tmp_path / "killed")])
    assert len(rd.read_metrics(tmp_path / "killed")) == 1, "the kill did not land in the second block"
    assert main(["gflownet", "train", "--resume", str(tmp_path / "killed"), "--quiet"]) == 0
    _same_weights(tmp_path / "whole", tmp_path / "killed")


def test_resuming_a_run_of_another_kind_is_a_one_line_error(tmp_path, capsys):
    """Before the shared kind check, ``train --resume`` of a GFlowNet run died in TrainSettings(**...)."""
    gflownet = tmp_path / "gfn"
    assert main(["gflownet", "train", "--ndim", "2", "--height", "3", "--n-trajectories", "32", "--batch-size", "16",
                 "--hidden", "8", "--eval-every", "1", "--quiet", "--out", str(gflownet)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(gflownet), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a GFlowNet run; this reads energy-model runs" in err
    assert main(["generative", "train", "--resume", str(gflownet), "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
