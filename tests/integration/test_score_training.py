"""Score objectives through the trainer and CLI: closed forms, fine-tuning, positions-only data."""

import subprocess
import sys

import numpy as np
import pytest
import yaml

import boltzmatch
from boltzmatch.data import make_structure, read_structures, write_structures

SMALL = {"n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0}


def test_linear_closed_form_fisher_beats_energy_fit_on_forces(tmp_path, ethanol_xtb):
    common = dict(model="linear", config={"n_rbf": 8, "cutoff": 4.0}, solver="closed-form", temperature=500,
                  progress=False, seed=0)
    energy = boltzmatch.train(ethanol_xtb, out=tmp_path / "energy", objective="energy", **common)
    fisher = boltzmatch.train(ethanol_xtb, out=tmp_path / "fisher", objective="fisher", **common)
    assert fisher["test_force_mae_meV_A"] < energy["test_force_mae_meV_A"]
    assert (tmp_path / "fisher" / "model.pt").exists() and (tmp_path / "fisher" / "metrics.csv").exists()
    ism = boltzmatch.train(ethanol_xtb, out=tmp_path / "ism", objective="ism", **common)
    assert np.isfinite(ism["test_force_mae_meV_A"])


def test_cli_closed_form(tmp_path, ethanol_xtb):
    result = subprocess.run(
        [sys.executable, "-m", "boltzmatch", "train", str(ethanol_xtb), "--model", "linear", "--objective", "fisher",
         "--solver", "closed-form", "--temperature", "500", "--out", str(tmp_path / "lin"), "--quiet"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "force MAE" in result.stdout


@pytest.mark.parametrize("objective", ["fisher", "ism", "ssm", "dsm"])
def test_finetune_records_parent_and_runs(tmp_path, ethanol_xtb, objective):
    boltzmatch.train(ethanol_xtb, out=tmp_path / "base", model="schnet", config=SMALL, objective="energy", epochs=2,
                     progress=False)
    frames = read_structures(ethanol_xtb)[:16]  # the exact Laplacian of ism is costly: keep it small
    data = tmp_path / "samples.xyz"
    if objective == "fisher":
        write_structures(data, frames)
    else:  # positions alone: no energies, no forces
        write_structures(data, [make_structure(a.numbers, a.positions) for a in frames])
    summary = boltzmatch.finetune(tmp_path / "base", data=data, out=tmp_path / "tuned", objective=objective,
                                  temperature=500, sigma=[0.05], epochs=2, lr=1e-4, freeze="embedding.*",
                                  progress=False)
    config = yaml.safe_load(open(tmp_path / "tuned" / "config.yaml"))
    assert config["parent"] == str(tmp_path / "base")
    assert config["normalization"] == yaml.safe_load(open(tmp_path / "base" / "config.yaml"))["normalization"]
    assert summary["epochs"] == 2
    base, tuned = boltzmatch.load(tmp_path / "base"), boltzmatch.load(tmp_path / "tuned")
    assert (base.embedding.weight == tuned.embedding.weight).all()  # frozen
    assert not all((a == b).all() for a, b in zip(base.parameters(), tuned.parameters()))


def test_finetune_errors(tmp_path, ethanol_xtb):
    boltzmatch.train(ethanol_xtb, out=tmp_path / "base", model="schnet", config=SMALL, epochs=1, progress=False)
    with pytest.raises(boltzmatch.BoltzmatchError, match="matches no parameter"):
        boltzmatch.finetune(tmp_path / "base", data=ethanol_xtb, out=tmp_path / "t", freeze="nothing.*",
                            temperature=500, epochs=1, progress=False)
    bare = tmp_path / "bare.xyz"  # frames without a recorded temperature
    write_structures(bare, [make_structure(a.numbers, a.positions) for a in read_structures(ethanol_xtb)[:4]])
    with pytest.raises(boltzmatch.BoltzmatchError, match="need a temperature"):
        boltzmatch.finetune(tmp_path / "base", data=bare, out=tmp_path / "t2", objective="ism", epochs=1,
                            progress=False)


def test_train_with_a_score_objective_needs_no_labels(tmp_path, ethanol_xtb):
    # regression: train() used to default to energy weight 1 and force weight 100 for every
    # objective, so dsm on positions alone failed asking for energy labels
    bare = tmp_path / "positions.xyz"
    write_structures(bare, [make_structure(a.numbers, a.positions) for a in read_structures(ethanol_xtb)[:8]])
    summary = boltzmatch.train(bare, out=tmp_path / "dsm", model="schnet", config=SMALL, objective="dsm",
                               temperature=500, epochs=1, progress=False)
    assert summary["epochs"] == 1


def test_cli_dsm_antithetic_is_recorded(tmp_path, ethanol_xtb):
    bare = tmp_path / "positions.xyz"
    write_structures(bare, [make_structure(a.numbers, a.positions) for a in read_structures(ethanol_xtb)[:8]])
    result = subprocess.run(
        [sys.executable, "-m", "boltzmatch", "train", str(bare), "--model", "schnet", "--objective", "dsm",
         "--sigma", "0.01", "--antithetic", "--temperature", "500", "--epochs", "1", "--out", str(tmp_path / "a"),
         "--quiet"], capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    training = yaml.safe_load(open(tmp_path / "a" / "config.yaml"))["training"]
    assert training["antithetic"] is True and training["sigma"] == [0.01]


@pytest.mark.parametrize("model, config", [("schnet", SMALL), ("linear", {"n_rbf": 4, "cutoff": 4.0})])
def test_score_finetune_restores_the_energy_zero(tmp_path, ethanol_xtb, model, config):
    """Score objectives cannot see a constant energy shift; with energies in the data the run
    refits the per-element energies, which moves energies and leaves forces alone."""
    import torch

    from boltzmatch.data.packed import PackedStructures
    from boltzmatch.training.normalization import refit_energy_offsets

    boltzmatch.train(ethanol_xtb, out=tmp_path / "base", model=model, config=config, epochs=2, progress=False)
    net = boltzmatch.load(tmp_path / "base")
    packed = PackedStructures(read_structures(ethanol_xtb), dtype=torch.float32)
    batch = packed.batch(np.arange(len(packed)))
    refit_energy_offsets(net, packed, np.arange(len(packed)))  # a 2-epoch model's zero is itself off
    before_e, before_f = boltzmatch.energy_and_forces(net, batch)
    with torch.no_grad():  # drift the zero by 2 eV per carbon
        if model == "linear":
            net.theta[net.element_offset_slice()][1] += 2.0
        else:
            net.element_energy[6] += 2.0
    shift = refit_energy_offsets(net, packed, np.arange(len(packed)))
    after_e, after_f = boltzmatch.energy_and_forces(net, batch)
    assert shift == pytest.approx(4.0, rel=1e-3)  # two carbons per ethanol
    torch.testing.assert_close(after_f, before_f)
    residual = (after_e - batch.energy).detach().double()
    middle = residual.sort().values[(len(residual) - 1) // 2:len(residual) // 2 + 1]  # a least-absolute zero
    assert float(middle[0]) - 1e-3 <= 0.0 <= float(middle[-1]) + 1e-3
    assert float((after_e - before_e).detach().abs().max()) < 1e-3

    summary = boltzmatch.finetune(tmp_path / "base", data=ethanol_xtb, out=tmp_path / "tuned", objective="fisher",
                                  temperature=500, epochs=2, lr=1e-3, progress=False)
    assert "energy_offset_shift_meV" in summary
    tuned = boltzmatch.load(tmp_path / "tuned")
    train = np.load(tmp_path / "tuned" / "split.npz")["train"]
    energies, _ = boltzmatch.energy_and_forces(tuned, packed.batch(train))
    residual = (packed.batch(train).energy - energies).detach().double()
    middle = residual.sort().values[(len(residual) - 1) // 2:len(residual) // 2 + 1]
    assert float(middle[0]) - 1e-3 <= 0.0 <= float(middle[-1]) + 1e-3


def test_finetune_with_a_supervised_loss_weighs_energy_and_forces_as_train_does(tmp_path, ethanol_xtb):
    """Regression: finetune's weights defaulted to 0 for every objective, so ``--objective
    energy-forces`` trained on a zero loss and left the model as it was."""
    boltzmatch.train(ethanol_xtb, out=tmp_path / "base", model="schnet", config=SMALL, epochs=1, progress=False)
    boltzmatch.finetune(tmp_path / "base", data=ethanol_xtb, out=tmp_path / "tuned", objective="energy-forces",
                        epochs=2, lr=1e-3, progress=False)
    config = yaml.safe_load(open(tmp_path / "tuned" / "config.yaml"))
    assert (config["training"]["energy_weight"], config["training"]["force_weight"]) == (1.0, 100.0)
    base, tuned = boltzmatch.load(tmp_path / "base"), boltzmatch.load(tmp_path / "tuned")
    assert not all((a == b).all() for a, b in zip(base.parameters(), tuned.parameters()))


def test_cd_keeps_its_last_epoch_not_the_best_dsm_validation_epoch(tmp_path, ethanol_xtb):
    # CD moves probability between basins, which the dsm validation loss cannot see: a model selected
    # by it threw the CD fine-tune away (alanine dipeptide: best epoch 1 of 21). A deliberately large
    # learning rate makes the dsm validation loss worse after the first epoch, so selection by it
    # would keep epoch 1 here.
    import torch

    parent = tmp_path / "dsm"
    boltzmatch.train(ethanol_xtb, out=parent, model="schnet", config={"n_features": 16, "n_interactions": 1},
                     objective="dsm", temperature=500.0, epochs=10, progress=False)
    run = tmp_path / "cd"
    summary = boltzmatch.finetune(parent, data=ethanol_xtb, out=run, objective="cd", temperature=500.0, epochs=4,
                                  lr=0.3, cd_options={"steps": 3, "buffer": 16}, progress=False)
    metrics = np.genfromtxt(run / "metrics.csv", delimiter=",", names=True)
    assert metrics["val_loss"].argmin() != len(metrics) - 1, "the dsm validation loss was best at the end"
    assert summary["best_epoch"] == summary["epochs"] == 4
    # the weights kept are the last epoch's moving average (after training a score objective refits the
    # per-element energy zero, model.pt's element_energy)
    last = torch.load(run / "checkpoint.pt", weights_only=False)["ema"]
    kept = torch.load(run / "model.pt", weights_only=False)
    assert all(torch.equal(last[f"module.{k}"], kept[k]) for k in kept if k != "element_energy")
