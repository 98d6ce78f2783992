"""Every pane driven through a real small workflow (the same steps as `boltzmatch gui --screenshots`),
with assertions on results and widget state; failures become dialogs; stop and resume."""

import json
from pathlib import Path

import pytest
import yaml
from pane_helpers import start_md_of_linear_model

import boltzmatch
from boltzmatch.errors import BoltzmatchError
from boltzmatch.gui import screenshots as steps
from boltzmatch.runs import run_dir as rd


def test_the_window_has_every_pane_and_remembers_recent_files(make_window, tmp_path, ethanol_xtb):
    window = make_window()
    titles = [window.nav.item(i).text() for i in range(window.nav.count())]
    assert titles == ["Data", "Model", "Train / fine-tune", "Compare", "Loss landscape", "Simulate", "Sweeps",
                      "Generative", "GFlowNets"]
    window.data.open(str(ethanol_xtb))
    steps.wait_for(window.data.worker)
    assert len(window.data.frames) == 60 and window.session.data == str(ethanol_xtb)
    window.close()
    again = make_window()  # same settings file
    assert again.session.recent_files()[0] == str(ethanol_xtb)
    assert again.data.recent.itemText(0) == str(ethanol_xtb)


def test_model_form_validates_inline_and_round_trips_the_cli_yaml(make_window, tmp_path):
    window = make_window()
    pane = window.model
    assert pane.status.text().startswith("✓")
    pane.fields["n_interactions"].setText("two")
    assert pane.status.text().startswith("✗") and "n_interactions" in pane.status.text()
    pane.fields["n_interactions"].setText("2")
    pane.fields["cutoff"].setText("4.5")
    assert pane.validate()
    pane.save(str(tmp_path / "model.yaml"))
    from boltzmatch.models import load_config

    saved = load_config(tmp_path / "model.yaml")
    assert saved["name"] == "schnet" and saved["n_interactions"] == 2 and saved["cutoff"] == 4.5
    (tmp_path / "mlp.yaml").write_text(yaml.safe_dump({"name": "mlp", "hidden": [32, 16], "cutoff": 4.0}))
    pane.load(str(tmp_path / "mlp.yaml"))
    assert pane.name.currentText() == "mlp" and pane.fields["hidden"].text() == "[32, 16]"
    with pytest.raises(BoltzmatchError, match="unknown key 'depth'"):
        (tmp_path / "bad.yaml").write_text("name: mlp\ndepth: 3\n")
        pane.load(str(tmp_path / "bad.yaml"))


def test_every_pane_through_the_small_workflow(make_window, tmp_path):
    window = make_window()
    steps.generate_data(window)
    data = window.data
    assert len(data.frames) == 30 and Path(window.session.data).exists()
    assert data.table.rowCount() > 8 and data.viewer.caption.text().startswith("1/30 C2H6O")
    assert data.progress.text.text() == "generate: done"

    steps.set_tiny_model(window)
    assert window.model.validate() and window.model.config()["n_features"] == 16

    steps.train_runs(window)
    runs = window.session.runs()
    assert len(runs) == 2
    parent, child = sorted(runs, key=lambda r: len(r.name))
    assert rd.read_config(child)["training"]["parent"] == str(parent)
    tree = window.train.runs
    assert tree.topLevelItemCount() == 1 and tree.topLevelItem(0).childCount() == 1  # the fine-tune under its parent
    assert tree.topLevelItem(0).text(3) == "3" and tree.topLevelItem(0).child(0).text(2) == "fisher"
    assert window.train.curves.panel.figure.axes[0].lines  # learning curves drawn on the interactive canvas

    steps.compare_runs(window)
    compare = window.compare
    assert set(compare.result["models"]) == {r.name for r in runs}
    assert compare.table.columnCount() == 3 and compare.ks.rowCount() == 2
    assert (compare.out / "report.md").exists() and compare.images["survival.png"].path is not None
    # issue 37: a clicked parity point opens its frame of the *test* file (20 frames), not the Data pane's (30)
    test = compare.result["settings"]["test"]
    assert test != window.session.data
    energies = compare.result["parity"][runs[0].name]["energy_reference"]
    (artist, *_) = compare.parity.figure.axes[0].collections
    x, y = artist.get_offsets()[7]
    event = type("Pick", (), {"ind": [7], "artist": artist})()
    compare._picked(event)
    assert compare.tabs.currentWidget() is compare.frame
    assert compare.frame.caption.text().startswith("8/20") and x == energies[7]
    assert window.session.data != test  # the training data stays the training data
    legend = [t.get_text() for t in compare.parity.figure.axes[0].get_legend().get_texts()]
    assert len(legend) == 2 and all("MAE" in t and "RMSE" in t for t in legend)
    assert not compare.parity.figure.axes[0].texts  # no per-model text boxes printed over each other
    steps.compare_ks(window)
    assert compare.tabs.currentWidget() is compare.images["ks.png"] and compare.images["ks.png"].path is not None

    steps.landscape_of_first(window)
    land = window.landscape
    assert land.result["grid"] == 7 and land.result["objective"] == "fisher"
    assert land.contour.figure.axes and land.surface.figure.axes[0].name == "3d"
    land.kind.button(1).setChecked(True)
    land.check_parameters(["embedding.weight[6]", "output.2.bias[0]"])
    land.grid.setValue(3)
    land.start()
    steps.wait_for(land.worker)
    assert land.result["directions"] == "params:embedding.weight[6],output.2.bias[0]"
    steps.landscape_of_classifier(window)
    assert land.result["objective"] == "hinge" and land.result["held_out_accuracy"] > 0.5

    steps.simulate_first(window)
    sim = window.simulate
    assert sim.summary["replicas"] == 4 and (sim.out / "summary.json").exists()
    assert sim.table.rowCount() >= 8 and sim.survival.panel.figure.axes

    steps.simulate_to_collapse(window)
    assert sim.summary["n_collapsed"] > 0 and sim.viewer.caption.text().endswith("(collapse)")

    steps.sweep_four_trials(window)
    assert (window.sweeps.folder / "report.md").exists()
    sweep_pngs = [window.sweeps.images.item(i).text() for i in range(window.sweeps.images.count())]
    assert {"curves_by_parameter.png", "correlation.png"} <= set(sweep_pngs)

    steps.generative_vae(window)
    report = window.generative.folder
    assert json.loads((report / "compare.json").read_text())["models"] and window.generative.images.count() >= 1

    steps.gflownet_hypergrid(window)
    listed = [window.gflownets.images.item(i).text() for i in range(window.gflownets.images.count())]
    assert "distribution.png" in listed and "L1 exact" in window.gflownets.report.toPlainText()


def test_a_failing_worker_shows_a_dialog_and_the_window_keeps_working(make_window, qtbot):
    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    pane = window.data
    pane.open("/no/such/file.xyz")
    qtbot.waitUntil(lambda: pane.last_error is not None and pane.progress.text.text() == "read: failed",
                    timeout=30_000)
    dialogs = [w for w in pane.findChildren(QMessageBox) if w.objectName() == "errorDialog"]
    assert dialogs and dialogs[-1].isVisible() and "/no/such/file.xyz" in dialogs[-1].text()
    assert "\n" not in dialogs[-1].text() and "Traceback" in dialogs[-1].detailedText()
    assert pane.progress.text.text() == "read: failed"
    assert pane.progress.bar.value() == 0  # issue 37: a failed read showed a full bar

    def boom():
        raise RuntimeError("injected")

    pane.run(boom, name="boom")
    qtbot.waitUntil(lambda: pane.worker.done, timeout=10_000)
    qtbot.waitUntil(lambda: pane.last_error == "RuntimeError: injected", timeout=10_000)
    window.model.fields["cutoff"].setText("4.0")  # the UI still responds
    assert window.model.validate()


def test_stop_keeps_a_valid_run_and_resume_continues_it(make_window, qtbot, ethanol_xtb):
    window = make_window()
    window.data.open(str(ethanol_xtb))
    steps.wait_for(window.data.worker)
    steps.set_tiny_model(window)
    pane = window.train
    pane.epochs.setValue(500)
    pane.batch_size.setValue(8)
    pane.start()
    run = pane.current
    qtbot.waitUntil(lambda: len(steps_rows(run)) >= 2, timeout=60_000)
    qtbot.waitUntil(lambda: pane.curves.frames >= 1, timeout=30_000)  # live curves, rendered off the GUI thread
    pane.progress.stop.click()
    # the worker's finished signal reaches the window after the thread is done: wait for the window
    qtbot.waitUntil(lambda: pane.worker.done and pane.start_button.isEnabled(), timeout=60_000)
    assert pane.progress.text.text().endswith("stopped")
    assert pane.curves.currentWidget() is pane.curves.panel  # the final, interactive plot
    done = len(steps_rows(run))
    assert (run / rd.CHECKPOINT).exists() and (run / rd.MODEL).exists() and done < 500
    pane.select_run(run)
    pane.resume()
    qtbot.waitUntil(lambda: len(steps_rows(run)) > done, timeout=60_000)
    pane.progress.stop.click()
    qtbot.waitUntil(lambda: pane.worker.done and pane.start_button.isEnabled(), timeout=60_000)
    epochs = [r["epoch"] for r in steps_rows(run)]
    assert epochs == list(range(1, len(epochs) + 1))  # resumed where it stopped, nothing repeated


def test_stopping_md_ends_after_a_step_with_a_summary_and_checkpoint(make_window, qtbot, tmp_path, ethanol_xtb):
    # A model that stays stable: the linear_runs fixture's ridge-1e-8 fits lose every replica within
    # 20-75 fs, so a Stop clicked after step 20 raced the last collapse (which ends MD as complete)
    # and lost on a slow CI machine. With ridge 1e-2 all 4 replicas stay up for 10 ps (measured).
    sim = start_md_of_linear_model(make_window, tmp_path, ethanol_xtb, ridge=1e-2, time=1000.0)
    qtbot.waitUntil(lambda: sim.progress.bar.value() > 20, timeout=60_000)
    sim.progress.stop.click()
    qtbot.waitUntil(lambda: sim.worker.done and sim.go.isEnabled(), timeout=60_000)
    summary = json.loads((sim.out / "summary.json").read_text())
    assert summary["complete"] is False and 0 < summary["simulated_ps"] < 1000
    assert (sim.out / "checkpoint.pt").exists() and sim.progress.text.text() == "simulate: stopped"
    # issue 37: the stopped replicas are censored, not collapsed: they were drawn dropping to 0 at the stop
    qtbot.waitUntil(lambda: sim.table.rowCount() > 0, timeout=10_000)
    (curve,) = sim.survival.panel.figure.axes[0].lines
    assert curve.get_ydata().min() == 1.0 and curve.get_xdata().max() < 1000.0
    sim.time.setValue(0.01)
    sim.start()
    assert sim.table.rowCount() == 0  # the previous run's summary goes the moment a new run starts
    steps.wait_for(sim.worker)
    assert sim.table.rowCount() > 0


def steps_rows(run):
    from boltzmatch.gui.panes.train import read_metrics

    return read_metrics(run)


def test_gui_screenshots_command_saves_one_png_per_step_and_exits(qapp, tmp_path, monkeypatch, capsys):
    from boltzmatch.cli.main import main

    # two quick steps of the workflow (the whole walk is the test above); the command is the real one
    monkeypatch.setattr(steps, "STEPS", [("data", lambda w: steps.generate_data(w, time=0.05)),
                                         ("model", steps.set_tiny_model)])
    assert main(["gui", "--screenshots", str(tmp_path / "shots")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert pngs == ["01-data.png", "02-model.png"]
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "shots" / "01-data.png"))
    assert image.width() >= 800 and image.height() >= 500


def test_fine_tuning_with_a_supervised_objective_uses_the_trainers_weights(make_window, ethanol_xtb):
    """Regression: the pane filled blank weights with 0 for every objective, so fine-tuning with
    energy-forces trained on a zero loss and failed in the worker."""
    window = make_window()
    window.data.open(str(ethanol_xtb))
    steps.wait_for(window.data.worker)
    steps.set_tiny_model(window)
    pane = window.train
    pane.new.setChecked(True)
    pane.epochs.setValue(1)
    pane.batch_size.setValue(8)
    pane.prior.setChecked(True)
    pane.temperature.setValue(500.0)
    pane.start()
    steps.wait_for(pane.worker)
    assert len(rd.read_config(pane.current)["prior"]["bonds"]) == 8  # ethanol's bonds, fitted at 500 K
    pane.select_run(pane.current)
    pane.tune.setChecked(True)
    pane.objective.setCurrentText("energy-forces")
    pane.start()
    steps.wait_for(pane.worker)
    assert pane.progress.text.text().endswith("done, its one epoch")
    tuned = [run for run in window.session.runs() if rd.read_config(run)["training"]["parent"]]
    assert len(tuned) == 1
    training = rd.read_config(tuned[0])["training"]
    assert rd.read_config(tuned[0])["prior"] == rd.read_config(training["parent"])["prior"]
    assert training["objective"] == "energy-forces"
    assert (training["energy_weight"], training["force_weight"]) == (1.0, 100.0)
    assert training["stress_weight"] == 0.0  # molecules: no stress term


def test_the_compute_device_is_a_setting_that_training_uses(make_window, tmp_path):
    """Settings ▸ Compute device (issue 40): auto, cpu and each CUDA device; the choice persists and goes into
    the training and MD calls; a device the machine lacks is refused when chosen."""
    settings_file = tmp_path / "device.ini"
    window = make_window(settings_file=settings_file)
    assert window.session.device() == "auto" and window.device_actions["auto"].isChecked()
    window.device_actions["cpu"].trigger()
    assert window.session.device() == "cpu"
    assert window.train._common()["device"] == "cpu"
    again = make_window(settings_file=settings_file)
    assert again.session.device() == "cpu" and again.device_actions["cpu"].isChecked()
    with pytest.raises(BoltzmatchError, match="--device cuda:99"):
        again.session.set_device("cuda:99")


def test_cuda_graphs_are_a_setting_passed_to_runs_on_a_cuda_device(make_window, tmp_path, monkeypatch):
    """Settings ▸ Replay CUDA graphs: persists, off at first; training and MD get ``cuda_graphs`` only where the
    compute device is a CUDA one."""
    settings_file = tmp_path / "graphs.ini"
    window = make_window(settings_file=settings_file)
    assert not window.session.cuda_graphs() and not window.cuda_graphs_action.isChecked()
    window.cuda_graphs_action.trigger()
    window.device_actions["cpu"].trigger()
    assert window.session.cuda_graphs()
    assert window.train._common()["device"] == "cpu" and "cuda_graphs" not in window.train._common()
    again = make_window(settings_file=settings_file)
    assert again.session.cuda_graphs() and again.cuda_graphs_action.isChecked()
    import torch

    import boltzmatch.utils.device as device

    monkeypatch.setattr(again.session, "device", lambda: "cuda")  # as on a machine with a GPU
    monkeypatch.setattr(device, "resolve_device", lambda spec: torch.device(spec))
    assert again.session.compute_options() == {"device": "cuda", "cuda_graphs": True}
    again.cuda_graphs_action.trigger()
    assert again.session.compute_options() == {"device": "cuda"}


def test_a_pressure_in_the_simulate_pane_runs_npt(make_window, tmp_path):
    """The Simulate pane's pressure field and coupling reach ``simulate --pressure``: the run records them and its
    thermo.csv has the volume and cell columns; text that is not a number is refused before any run starts."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.io import write

    from boltzmatch.simulate.output import read_thermo

    frames = []
    for k in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(0.03, seed=k)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    write(tmp_path / "cu.xyz", frames)
    run = tmp_path / "cu-linear"
    boltzmatch.train(tmp_path / "cu.xyz", out=run, objective="energy", model="linear",
                     config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form", ridge=1e-2, progress=False)
    window = make_window()
    window.session.add_run(run)
    window.data.open(str(tmp_path / "cu.xyz"))
    steps.wait_for(window.data.worker)
    sim = window.simulate
    sim.refresh_runs()
    sim.run_box.setCurrentIndex(sim.run_box.findData(str(run)))
    sim.replicas.setValue(2)
    sim.time.setValue(0.02)
    sim.pressure.setText("one")
    sim.start()
    assert sim.last_error == "simulate: pressure must be a number of GPa, got 'one'" and sim.out is None
    sim.pressure.setText("0.5")
    sim.coupling.setCurrentText("anisotropic")
    sim.start()
    steps.wait_for(sim.worker)
    settings = json.loads((sim.out / "simulation.json").read_text())
    assert settings["pressure"] == 0.5 and settings["pressure_coupling"] == "anisotropic"
    assert {"volume_A3", "a_A", "c_A"} <= set(read_thermo(sim.out / "thermo.csv"))
