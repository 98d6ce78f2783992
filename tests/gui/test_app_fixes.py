"""Issue 37's bugs, each driven through the app as a user met it: the Train pane shows the run that just
ended, says why it ended in one unit for every objective, and fits the linear model's energy zero."""

from pane_helpers import start_md_of_linear_model

import boltzmatch
from boltzmatch.gui import screenshots as steps
from boltzmatch.gui.panes.train import VAL_FORCE_HEADER, kept_force_mae, read_metrics
from boltzmatch.runs import run_dir as rd


def _open(make_window, data):
    window = make_window()
    window.data.open(str(data))
    steps.wait_for(window.data.worker)
    return window


def _trained(make_window, data, epochs: int):
    """A window whose Train pane has just trained a tiny SchNet for ``epochs`` epochs."""
    window = _open(make_window, data)
    steps.set_tiny_model(window)
    pane = window.train
    pane.epochs.setValue(epochs)
    pane.batch_size.setValue(8)
    pane.start()
    steps.wait_for(pane.worker)
    return pane


def test_after_a_fine_tune_the_train_pane_shows_the_fine_tune_not_its_parent(make_window, ethanol_xtb):
    pane = _trained(make_window, ethanol_xtb, epochs=1)
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
    pane = _trained(make_window, ethanol_xtb, epochs=3)
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



def test_smaller_things_the_app_got_wrong(make_window, ethanol_xtb):
    from boltzmatch.objectives.registry import OBJECTIVE_DESCRIPTIONS, OBJECTIVES

    window = _open(make_window, ethanol_xtb)
    rows = {window.data.table.item(r, 0).text(): window.data.table.item(r, 1).text()
            for r in range(window.data.table.rowCount())}
    assert len(rows["energy mean (eV)"].split(".")[1]) == 4  # was rounded to 4 digits: "-4397"
    pane = window.train
    for index, name in enumerate(OBJECTIVES):  # every objective explained where it is chosen
        assert pane.objective.itemData(index, 3) == OBJECTIVE_DESCRIPTIONS[name]  # 3: Qt.ToolTipRole
    pane.objective.setCurrentText("dsm")
    assert "denoising" in pane.objective_help.text()
    model = window.model
    model.name.setCurrentText("schnet")
    model.fields["n_interactions"].setText("[1, 2")
    assert not model.validate() and model.preview.toPlainText().startswith("# not valid")


def test_the_landscape_pane_draws_a_classifier_s_hinge_and_cross_entropy(make_window):
    from boltzmatch.generative.train import train_generative

    window = make_window()
    run = window.session.workdir / "digits-classifier"
    train_generative("classifier", "digits", out=run, epochs=2, lr=1e-3, options={"hidden": [16]}, progress=False)
    pane = window.landscape
    assert str(run) not in [pane.run_box.itemData(i) for i in range(pane.run_box.count())]  # not an energy model
    for loss in ("hinge", "cross-entropy"):
        pane.objective.setCurrentIndex(pane.objective.findData(loss))
        assert pane.run_box.currentData() == str(run)
        assert pane.parameters.topLevelItemCount() > 0  # the classifier's own parameters, to pick two
        pane.grid.setValue(3)
        pane.start()
        steps.wait_for(pane.worker)
        assert pane.result["objective"] == loss and pane.result["held_out_accuracy"] > 0
        assert pane.contour.figure.axes


def test_the_network_builder_counts_parameters_and_keeps_form_and_yaml_in_step(make_window):
    from boltzmatch.models import build_model

    window = make_window()
    model = window.model
    model.name.setCurrentText("painn")
    model.fields["n_features"].setText("24")
    config = dict(model.config(), elements=[1, 6, 8])
    count = sum(p.numel() for p in build_model(config).parameters())
    assert f"{count:,} parameters" in model.status.text()
    assert "n_features: 24" in model.preview.toPlainText()  # form → YAML
    model.preview.setPlainText("name: schnet\nn_interactions: 2\ncutoff: 4.5\n")  # YAML → form
    assert model.name.currentText() == "schnet"
    assert model.fields["n_interactions"].text() == "2" and model.fields["cutoff"].text() == "4.5"
    assert model.preview.toPlainText() == "name: schnet\nn_interactions: 2\ncutoff: 4.5\n"  # as typed
    model.preview.setPlainText("name: schnet\nn_interactions: [2\n")
    assert model.status.text().startswith("✗ YAML") and model.fields["n_interactions"].text() == "2"


def test_a_collapsed_replica_opens_at_its_collapse_with_the_bond_that_changed(make_window, tmp_path, ethanol_xtb):
    sim = start_md_of_linear_model(make_window, tmp_path, ethanol_xtb, ridge=1e-8, time=0.5)  # all collapse
    steps.wait_for(sim.worker)
    assert sim.summary["n_collapsed"] > 0
    assert "collapsed at" in sim.replica_box.itemText(0)  # collapsed replicas first
    viewer = sim.viewer
    assert viewer.slider.value() == len(viewer.frames) - 1 and viewer.caption.text().endswith("(collapse)")
    broken, formed = viewer.changes
    assert broken or formed  # the graph changed: what broke (red) or formed (orange) is drawn
    assert "broken:" in viewer.caption.text() or "new bonds" in viewer.caption.text()
    viewer.slider.setValue(0)  # the first frame is the start: nothing broken yet
    assert viewer.changes == ([], []) and "(collapse)" not in viewer.caption.text()


def test_a_validation_file_chosen_in_the_train_pane_validates_the_run(make_window, ethanol_xtb, tmp_path):
    """The Validation field is train --val-data: its frames validate, the data file keeps only its test share."""
    from boltzmatch.data import read_structures, write_structures

    validation = tmp_path / "validation.xyz"
    write_structures(validation, read_structures(ethanol_xtb)[::6])
    window = _open(make_window, ethanol_xtb)
    steps.set_tiny_model(window)
    pane = window.train
    pane.validation.set_text(validation)
    pane.epochs.setValue(1)
    pane.batch_size.setValue(8)
    pane.start()
    steps.wait_for(pane.worker)
    assert rd.read_config(pane.current)["training"]["val_data"] == str(validation)
    assert f"validation {validation}" in (pane.current / rd.SUMMARY).read_text()


def test_element_energies_typed_in_the_train_pane_fix_the_open_energy_zero(make_window, ethanol_xtb):
    """The Element energies field is train --element-energies: given values go to the run's config."""
    window = _open(make_window, ethanol_xtb)
    steps.set_tiny_model(window)
    pane = window.train
    pane.element_energies.setText("H=-10.7, C=-48.8, O=-102.6")
    pane.epochs.setValue(1)
    pane.batch_size.setValue(8)
    pane.start()
    steps.wait_for(pane.worker)
    config = rd.read_config(pane.current)
    assert config["training"]["element_energies"] == {"H": -10.7, "C": -48.8, "O": -102.6}
    assert config["normalization"]["reference_energies"] == {1: -10.7, 6: -48.8, 8: -102.6}
    assert "given values" in (pane.current / rd.SUMMARY).read_text()
    pane.select_run(pane.current)  # a fine-tune takes the field too (it was for new runs only)
    pane.tune.setChecked(True)
    pane.element_energies.setText("xtb")
    pane.start()
    steps.wait_for(pane.worker)
    assert rd.read_config(pane.current)["training"]["element_energies"] == "xtb"
    assert "xtb isolated atoms" in (pane.current / rd.SUMMARY).read_text()
