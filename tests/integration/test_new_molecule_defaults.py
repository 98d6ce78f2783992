"""Issue 11: the defaults on a molecule they were not designed around (GFN2-xTB malonaldehyde, 500 K).

Training frames from one trajectory, test frames from a separately seeded one. Before the fixes:
the Fisher closed form with Gaussians on [0, r_c] ran away in MD within 0.1 ps, dsm's default
σ of 0.05 Å shrank forces 3×, compare printed energy errors of 10⁵ meV for a positions-only model,
and progress bars wrote carriage returns into log files.
"""

import numpy as np
import pytest
import yaml

import boltzmatch
from boltzmatch.analysis.compare import compare
from boltzmatch.analysis.evaluate import evaluate
from boltzmatch.data import make_structure, read_structures, write_structures
from boltzmatch.objectives.score import DSM_SIGMA_FRACTION, dsm_sigma_from_data
from boltzmatch.training import format_train_summary
from helpers import xtb_in_subprocess

SMALL = {"cutoff": 4.0, "n_interactions": 1, "n_features": 16, "n_rbf": 8}


@pytest.fixture(scope="module")
def malonaldehyde(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mal")
    for name, time, seed in (("train", 5.0, 1), ("test", 1.0, 2)):
        xtb_in_subprocess("malonaldehyde", folder / f"{name}.xyz", temperature=500, time=time, interval=10,
                          timestep=0.5, equilibration=200, seed=seed)
    return folder / "train.xyz", folder / "test.xyz"


@pytest.mark.parametrize("objective", ["energy", "fisher"])
def test_linear_closed_forms_generalise_and_do_not_heat_up(tmp_path, malonaldehyde, objective):
    train, test = malonaldehyde
    run = tmp_path / objective
    summary = boltzmatch.train(train, out=run, model="linear", objective=objective, solver="closed-form",
                               temperature=500, progress=False)
    assert summary["ridge"] >= 0 and summary["rank"] <= summary["n_parameters"]
    metrics = evaluate(run, test)
    assert metrics["force_pearson"] >= 0.8, metrics
    md = boltzmatch.simulate(run, test, out=tmp_path / "md", reference=train, temperature=500, replicas=4,
                             time=1.0, timestep=0.5, write_trajectories=False, progress=False, seed=1)
    # no replica heats up; the Fisher fit (27 force components a frame) also keeps every bond
    assert "temperature" not in md["collapse_reason"] and md["mean_temperature"] < 650, md
    if objective == "fisher":
        assert md["n_collapsed"] == 0, md["collapse_reason"]


def test_near_duplicate_descriptor_columns_on_a_real_molecule(tmp_path, malonaldehyde):
    """64 Gaussians per element pair: neighbouring columns nearly equal; the default solve copes."""
    train, test = malonaldehyde
    run = tmp_path / "dense"
    summary = boltzmatch.train(train, out=run, model="linear", config={"n_rbf": 64}, objective="fisher",
                               solver="closed-form", temperature=500, progress=False)
    assert summary["rank"] < summary["n_parameters"]
    assert evaluate(run, test)["force_pearson"] >= 0.8


def test_dsm_sigma_comes_from_the_data_and_is_reported(tmp_path, malonaldehyde):
    train, _ = malonaldehyde
    bare = tmp_path / "positions.xyz"
    write_structures(bare, [make_structure(a.numbers, a.positions) for a in read_structures(train)[:40]])
    summary = boltzmatch.train(bare, out=tmp_path / "dsm", model="schnet", config=SMALL, objective="dsm",
                               temperature=500, epochs=1, progress=False)
    sigma = dsm_sigma_from_data(read_structures(bare))
    assert 0.001 < sigma < 0.01  # ⅛ of the C–H / O–H widths at 500 K, far below the old 0.05 Å
    training = yaml.safe_load(open(tmp_path / "dsm" / "config.yaml"))["training"]
    assert training["sigma"] == [pytest.approx(sigma, abs=1e-6)] and training["antithetic"] is True
    assert summary["dsm_sigma"] == training["sigma"] and "dsm σ (Å)" in format_train_summary(summary)


def test_dsm_sigma_of_a_harmonic_bond_is_its_width_times_the_fraction():
    rng = np.random.default_rng(0)
    frames = []
    for r in 1.1 + 0.03 * rng.standard_normal(4000):
        frames.append(make_structure([6, 8], np.array([[0.0, 0.0, 0.0], [0.0, 0.0, r]])))
    assert dsm_sigma_from_data(frames) == pytest.approx(DSM_SIGMA_FRACTION * 0.03, rel=0.05)


def test_compare_shows_only_offset_removed_energies_for_a_positions_only_model(tmp_path, malonaldehyde):
    train, test = malonaldehyde
    bare = tmp_path / "positions.xyz"
    write_structures(bare, [make_structure(a.numbers, a.positions) for a in read_structures(train)[:40]])
    boltzmatch.train(bare, out=tmp_path / "dsm", model="schnet", config=SMALL, objective="dsm", temperature=500,
                     epochs=1, progress=False)
    boltzmatch.train(train, out=tmp_path / "lin", model="linear", objective="energy", solver="closed-form",
                     progress=False)
    result = compare([tmp_path / "dsm", tmp_path / "lin"], test, out=tmp_path / "report", progress=False)
    models = result["models"]
    assert "energy_mae_meV" not in models["dsm"] and "energy_mae_centered_meV" in models["dsm"]
    assert "energy_mae_meV" in models["lin"]
    assert models["dsm"]["energy_mae_centered_meV"] < 1e4  # not the arbitrary zero's 10⁵–10⁶ meV
    assert "dsm: trained without energies" in (tmp_path / "report" / "report.md").read_text()
    metrics = evaluate(tmp_path / "dsm", test)
    assert "energy_mae" not in metrics and "energy_mae_centered" in metrics


def test_progress_in_a_log_file_is_lines_not_carriage_returns(tmp_path, malonaldehyde, capsys):
    train, test = malonaldehyde
    boltzmatch.train(train, out=tmp_path / "lin", model="linear", objective="energy", solver="closed-form",
                     progress=False)
    boltzmatch.simulate(tmp_path / "lin", test, out=tmp_path / "md", replicas=2, time=0.5, timestep=0.5,
                        write_trajectories=False, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("simulate")]
    assert 5 <= len(lines) <= 1 + 100 // 5 + 2 and "100%" in lines[-1]


def test_training_summary_names_the_split_and_warns_about_random_splits(tmp_path, malonaldehyde):
    train, _ = malonaldehyde
    summary = boltzmatch.train(train, out=tmp_path / "a", model="linear", objective="energy", solver="closed-form",
                               progress=False)
    text = format_train_summary(summary)
    assert "random" in text and "separately seeded trajectory" in text and "boltzmatch evaluate" in text
    summary = boltzmatch.train(train, out=tmp_path / "b", model="linear", objective="energy", solver="closed-form",
                               split_method="contiguous", progress=False)
    assert "contiguous" in format_train_summary(summary)
    assert "separately seeded" not in format_train_summary(summary)
