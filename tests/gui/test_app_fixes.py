"""Issue 37's bugs, each driven through the app as a user met it: the Train pane shows the run that just
ended, says why it ended in one unit for every objective, and fits the linear model's energy zero."""

import boltzmatch
from boltzmatch.gui import screenshots as steps
from boltzmatch.gui.panes.train import VAL_FORCE_HEADER, kept_force_mae, read_metrics
from boltzmatch.runs import run_dir as rd


def _open(make_window, data):
    window = make_window()
    window.data.open(str(data))
    steps.wait_for(window.data.worker)
    return window


def test_after_a_fine_tune_the_train_pane_shows_the_fine_tune_not_its_parent(make_window, ethanol_xtb):
    window = _open(make_window, ethanol_xtb)
    steps.set_tiny_model(window)
    pane = window.train
    pane.epochs.setValue(1)
    pane.batch_size.setValue(8)
    pane.start()
    steps.wait_for(pane.worker)
    parent = pane.current
    pane.select_run(parent)
    pane.tune.setChecked(True)
    pane.objective.setCurrentText("fisher")
    pane.temperature.setValue(500.0)
    pane.start()
    tuned = pane.current
    steps.wait_for(pane.worker)
    assert tuned != parent
    assert pane.current == tuned and pane.selected_run() == tuned  # was the parent: the list reselected it
    assert pane.curves.panel.figure.axes[0].get_title() == tuned.name  # the plot drawn is the fine-tune's
    assert pane.summary.toPlainText() == (tuned / rd.SUMMARY).read_text()


def test_training_says_why_it_ended_and_compares_runs_in_one_unit(make_window, ethanol_xtb):
    window = _open(make_window, ethanol_xtb)
    steps.set_tiny_model(window)
    pane = window.train
    pane.epochs.setValue(3)
    pane.batch_size.setValue(8)
    pane.start()
    steps.wait_for(pane.worker)
    assert pane.progress.text.text().endswith("done, all 3 epochs")
    assert "ended by" in pane.summary.toPlainText() and "force MAE (meV/Å)" in pane.summary.toPlainText()
    assert pane.runs.headerItem().text(4) == VAL_FORCE_HEADER
    item = pane.runs.currentItem()
    expected = kept_force_mae(read_metrics(pane.current), "energy-forces")
    assert item.text(4) == f"{expected:.1f}"


def test_early_stopping_is_reported_with_the_epoch(tmp_path, ethanol_xtb):
    summary = boltzmatch.train(ethanol_xtb, out=tmp_path / "run", model="schnet",
                               config={"n_features": 8, "n_interactions": 1}, epochs=40, patience=1, lr=1e-1,
                               schedule="none", progress=False)
    assert summary["end_reason"] == "early stopping" and summary["epochs"] < 40
    assert f"early stopping at epoch {summary['epochs']} of 40" in (tmp_path / "run" / rd.SUMMARY).read_text()


def test_the_linear_model_from_the_app_fits_its_energy_zero_either_way(make_window, ethanol_xtb):
    window = _open(make_window, ethanol_xtb)
    window.model.name.setCurrentText("linear")
    pane = window.train
    pane.objective.setCurrentText("energy-forces")
    pane.epochs.setValue(2)
    maes = {}
    for solver, objective in (("iterative", "energy-forces"), ("closed-form", "energy")):
        pane.solver.setCurrentText(solver)
        pane.objective.setCurrentText(objective)
        pane.start()
        steps.wait_for(pane.worker)
        assert rd.read_config(pane.current)["training"]["solver"] == solver
        maes[solver] = read_metrics(pane.current)[-1]["val_energy_mae_meV"]
    # the iterative fit left the per-element offsets at 0: 273,188 meV; they now start at least squares
    assert maes["iterative"] < 2_000 and maes["closed-form"] < 2_000


def test_a_stopped_md_is_not_drawn_as_collapsing_and_a_new_one_starts_clean(make_window, qtbot, tmp_path,
                                                                             ethanol_xtb):
    run = tmp_path / "stable"  # all replicas stay up for 10 ps (see test_app.py's stop test)
    boltzmatch.train(ethanol_xtb, out=run, objective="energy", model="linear", config={"n_rbf": 6, "cutoff": 4.0},
                     solver="closed-form", temperature=500, ridge=1e-2, progress=False)
    window = _open(make_window, ethanol_xtb)
    window.session.add_run(run)
    sim = window.simulate
    sim.refresh_runs()
    sim.run_box.setCurrentIndex(sim.run_box.findData(str(run)))
    sim.replicas.setValue(4)
    sim.time.setValue(1000.0)
    sim.start()
    qtbot.waitUntil(lambda: sim.progress.bar.value() > 20, timeout=60_000)
    sim.progress.stop.click()
    qtbot.waitUntil(lambda: sim.worker.done and sim.go.isEnabled(), timeout=60_000)
    qtbot.waitUntil(lambda: sim.table.rowCount() > 0, timeout=10_000)
    (curve,) = sim.survival.panel.figure.axes[0].lines
    assert curve.get_ydata().min() == 1.0  # 0 collapsed: it was drawn dropping to 0 at the stop time
    assert curve.get_xdata().max() < 1000.0  # and it ends where the stopped run did
    sim.time.setValue(0.01)
    sim.start()
    assert sim.table.rowCount() == 0  # the previous run's summary is gone the moment a new run starts
    steps.wait_for(sim.worker)
    assert sim.table.rowCount() > 0
