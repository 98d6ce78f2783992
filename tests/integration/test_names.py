"""One word per concept: the renamed flags and arguments, the old names' one-line deprecation notices,
and run folders written under the old names, which still load and resume."""

from __future__ import annotations

import pytest
import torch
import yaml

import boltzmatch
from boltzmatch.cli.main import build_parser, main
from boltzmatch.gflownet.train import GFlowNetSettings, load_gflownet, train_gflownet
from boltzmatch.runs import run_dir as rd
from boltzmatch.training.settings import TrainSettings
from boltzmatch.workflows.refine import _stored_settings


@pytest.mark.parametrize(("argv", "dest", "value", "new"), [
    (["train", "x.xyz", "--loss", "energy"], "objective", "energy", "--objective"),
    (["refine", "run", "--data", "x.xyz", "--out", "o", "--reference", "emt"], "calculator", "emt", "--calculator"),
    (["compare", "run", "--out", "o", "--reference", "test.xyz"], "test", "test.xyz", "--test"),
    (["gflownet", "train", "--env", "torsions", "--energy", "xtb"], "calculator", "xtb", "--calculator"),
    (["gflownet", "train", "--env", "tetris", "--beta", "3"], "sharpness", 3.0, "--sharpness"),
    (["generate", "ethanol", "--out", "x.xyz", "--steps", "40"], "steps", 40, "--time"),
])
def test_an_old_flag_still_works_and_says_its_new_name_in_one_line(argv, dest, value, new, capsys):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and new in err[0] and argv[-2] in err[0]


def test_the_new_names_parse_without_a_notice(capsys):
    parser = build_parser()
    assert parser.parse_args(["train", "x.xyz", "--objective", "fisher"]).objective == "fisher"
    assert parser.parse_args(["train", "x.xyz"]).objective == "energy-forces"
    assert parser.parse_args(["compare", "r", "--out", "o", "--test", "t.xyz"]).test == "t.xyz"
    assert parser.parse_args(["generate", "ethanol", "--out", "x", "--time", "0.5"]).time == 0.5
    assert capsys.readouterr().err == ""


def test_generate_steps_and_time_give_the_same_frames(tmp_path):
    """``--steps 40`` (old) is ``--time 0.02`` at 0.5 fs: byte-identical files."""
    common = ["generate", "ethanol", "--calculator", "emt", "--interval", "10", "--equilibration", "0", "--quiet"]
    assert main([*common, "--time", "0.02", "--out", str(tmp_path / "time.xyz")]) == 0
    assert main([*common, "--steps", "40", "--out", str(tmp_path / "steps.xyz")]) == 0
    assert (tmp_path / "time.xyz").read_bytes() == (tmp_path / "steps.xyz").read_bytes()
    assert len((tmp_path / "time.xyz").read_text().split("Properties=")) - 1 == 4


def test_train_loss_keyword_is_objective(tmp_path, ethanol_xtb):
    with pytest.warns(DeprecationWarning, match="objective"):
        boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="linear", loss="energy", solver="closed-form",
                         config={"n_rbf": 4, "cutoff": 4.0}, ridge=1e-6, progress=False)
    training = rd.read_config(tmp_path / "run")["training"]
    assert training["objective"] == "energy" and "loss" not in training


def test_a_run_written_with_loss_and_objective_resumes_as_its_objective(tmp_path, ethanol_xtb):
    """Runs from before the rename stored ``loss: energy`` beside ``objective: null``."""
    run = tmp_path / "old"
    boltzmatch.train(ethanol_xtb, out=run, model="schnet", objective="energy", epochs=2, batch_size=16,
                     config={"n_features": 8, "n_interactions": 1, "n_rbf": 8}, progress=False)
    config = rd.read_config(run)
    config["training"].pop("objective")
    config["training"].update(loss="energy", objective=None, epochs=3)
    rd.write_config(run, config)
    assert TrainSettings.from_config(config["training"]).objective == "energy"
    summary = boltzmatch.train(None, out=run, resume=True, progress=False)
    assert summary["epochs"] == 3


def test_old_gflownet_and_refine_settings_read_under_the_new_names(tmp_path):
    old = {"env": "tetris", "env_options": {"width": 2, "height": 4, "beta": 3.0}, "temperature": 2.0}
    settings = GFlowNetSettings.from_config(old)
    assert settings.policy_temperature == 2.0 and settings.env_options == {"width": 2, "height": 4, "sharpness": 3.0}
    assert _stored_settings({"run_dir": "r", "reference": "emt"})["calculator"] == "emt"
    # a whole GFlowNet run folder written with the old names loads
    train_gflownet("tetris", out=tmp_path / "g", env_options={"width": 2, "height": 4, "sharpness": 3.0},
                   n_trajectories=32, batch_size=16, hidden=[8], eval_every=1, progress=False)
    config = rd.read_config(tmp_path / "g")
    config["training"]["temperature"] = config["training"].pop("policy_temperature")
    options = config["training"]["env_options"]
    options["beta"] = options.pop("sharpness")
    rd.write_config(tmp_path / "g", config)
    env, model, loaded = load_gflownet(tmp_path / "g")
    assert env.sharpness == 3.0
    assert loaded.policy_temperature == 1.0 and isinstance(model, torch.nn.Module)
    with pytest.warns(DeprecationWarning, match="policy_temperature"):
        train_gflownet("tetris", out=tmp_path / "h", env_options={"width": 2, "height": 4}, n_trajectories=32,
                       batch_size=16, hidden=[8], eval_every=1, temperature=1.5, progress=False)
    assert yaml.safe_load((tmp_path / "h" / "config.yaml").read_text())["training"]["policy_temperature"] == 1.5
