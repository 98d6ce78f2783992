"""Issue 40: every command that computes with a model takes ``--device``, the CPU and the GPU run one code path,
and a run made on one device loads, and gives the same numbers, on the other. Each command runs through the
CLI once per device; the CUDA runs carry the gpu marker (skipped, and counted, without a GPU;
``scripts/gpu_check.sh`` runs them on one)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import yaml

import boltzmatch
from boltzmatch.cli.main import build_parser, main

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
#: commands that compute with a model: each takes --device
COMPUTING = {"demo", "train", "finetune", "evaluate", "simulate", "compare", "landscape", "refine",
             "generative train", "generative sample", "generative compare",
             "gflownet train", "gflownet sample", "gflownet evaluate"}
#: sweeps place whole trials on GPUs (--gpus 0,1,…, one trial per GPU by CUDA_VISIBLE_DEVICES)
PLACING = {"sweep run", "sweep agent"}
#: no model computes in these: reference calculators (xTB, EMT, OpenMM) pick their own hardware; files, reports,
#: the study database, windows
OTHERS = {"generate", "data qm9", "info", "import", "export", "stability", "sweep report", "sweep best",
          "sweep dashboard", "gui", "docs"}
SCHNET = {"name": "schnet", "n_features": 16, "n_interactions": 1, "cutoff": 4.0}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, set[str]]:
    """Every command the parser runs ('gflownet train'), with its option strings."""
    leaves = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = leaf_commands(sub, f"{prefix}{name} ")
                leaves.update(nested or {f"{prefix}{name}": {o for a in sub._actions for o in a.option_strings}})
    return leaves


def test_every_command_that_computes_takes_device():
    commands = leaf_commands(build_parser())
    assert set(commands) == COMPUTING | PLACING | OTHERS, "a new command: sort it into one of the three sets"
    assert {c for c, options in commands.items() if "--device" in options} == COMPUTING
    assert {c for c, options in commands.items() if "--gpus" in options} == PLACING
    graphed = {c for c, options in commands.items() if "--cuda-graphs" in options}
    assert graphed == {"train", "finetune", "simulate", "refine", "compare"}  # the commands that train or run MD


@pytest.fixture(scope="module")
def emt_ethanol(tmp_path_factory):
    """ASE EMT ethanol frames at 300 K: a real reference that needs neither tblite nor a GPU."""
    path = tmp_path_factory.mktemp("emt") / "ethanol.xyz"
    boltzmatch.generate("ethanol", out=path, calculator="emt", temperature=300, time=0.2, interval=10,
                        timestep=0.5, equilibration=50, seed=1, progress=False)
    return path


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


@pytest.mark.parametrize("device", DEVICES)
def test_energy_model_commands_on(device, emt_ethanol, tmp_path, capsys):
    config = tmp_path / "schnet.yaml"
    config.write_text(yaml.safe_dump(SCHNET))
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    run("train", emt_ethanol, "--model", "schnet", "--config", config, "--epochs", 2, "--batch-size", 4,
        "--out", base, "--device", device, "--quiet")
    assert boltzmatch.runs.read_config(base)["training"]["device"].startswith(device)
    run("finetune", base, "--data", emt_ethanol, "--objective", "dsm", "--epochs", 1, "--batch-size", 4,
        "--out", tuned, "--device", device, "--quiet")

    # the run made on `device` loads on the CPU and on `device` and gives one answer (float32 reordering)
    capsys.readouterr()
    errors = {}
    for where in ("cpu", device):
        run("evaluate", tuned, emt_ethanol, "--json", "--device", where)
        errors[where] = json.loads(capsys.readouterr().out)
    assert errors[device]["force_mae"] == pytest.approx(errors["cpu"]["force_mae"], rel=1e-4)

    run("simulate", tuned, "--start", emt_ethanol, "--out", tmp_path / "md", "--replicas", 3, "--time", 0.02,
        "--interval", 5, "--device", device, "--quiet")
    summary = json.loads((tmp_path / "md" / "summary.json").read_text())
    assert summary["replicas"] == 3 and summary["timing"]["device"].startswith(device)
    run("compare", base, tuned, "--test", emt_ethanol, "--out", tmp_path / "report", "--simulate", "--replicas", 2,
        "--time", 0.01, "--interval", 5, "--device", device, "--quiet")
    models = json.loads((tmp_path / "report" / "compare.json").read_text())["models"]
    assert all(np.isfinite(m["force_mae_meV_A"]) for m in models.values())
    run("landscape", tuned, "--data", emt_ethanol, "--out", tmp_path / "landscape", "--objective", "forces",
        "--grid", 3, "--max-frames", 4, "--device", device, "--quiet")
    assert np.isfinite(np.load(tmp_path / "landscape" / "landscape.npz")["loss"]).all()
    run("refine", base, "--data", emt_ethanol, "--calculator", "emt", "--temperature", 300, "--rounds", 1,
        "--replicas", 2, "--time", 0.02, "--label-budget", 2, "--epochs", 1, "--out", tmp_path / "refine",
        "--device", device, "--quiet")
    rounds = json.loads((tmp_path / "refine" / "refine.json").read_text())["rounds"]
    assert rounds[-1]["labels_used"] <= 2


@pytest.mark.parametrize("device", DEVICES)
def test_generative_and_gflownet_commands_on(device, tmp_path):
    diffusion = tmp_path / "diffusion"
    run("generative", "train", "diffusion", "--data", "moons", "--epochs", 1, "--option", "hidden=[16,16]",
        "--out", diffusion, "--device", device, "--quiet")
    run("generative", "sample", diffusion, "-n", 40, "--steps", 10, "--out", tmp_path / "samples.npy",
        "--device", device)
    assert np.isfinite(np.load(tmp_path / "samples.npy")).all()
    run("generative", "compare", diffusion, "--out", tmp_path / "judged", "--device", device, "--quiet")
    row = json.loads((tmp_path / "judged" / "compare.json").read_text())["models"]["diffusion"]
    assert np.isfinite(row["nll"]) and 0 < row["mmd_p"] <= 1

    flow = tmp_path / "gfn"
    run("gflownet", "train", "--env", "hypergrid", "--ndim", 2, "--height", 4, "--n-trajectories", 64,
        "--batch-size", 16, "--hidden", 16, "--out", flow, "--device", device, "--quiet")
    run("gflownet", "sample", flow, "-n", 20, "--out", tmp_path / "states.npy", "--device", device)
    assert np.load(tmp_path / "states.npy").shape[0] == 20
    run("gflownet", "evaluate", flow, "--samples", 100, "--json", "--device", device)
