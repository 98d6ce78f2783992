"""``boltzmatch gui --screenshots DIR``: walk every pane through a small real workflow and save one
PNG per step. The same steps drive the pytest-qt tests, so what the pictures show is tested.

The workflow: 0.15 ps (300 steps) of GFN2-xTB ethanol MD at 500 K (30 frames) → the network builder (a small
SchNet) → trained 3 epochs → fine-tuned 2 epochs by the Fisher objective → both compared on a separately
seeded trajectory (20 frames; 4 replicas, 0.05 ps), with the KS plots → the loss landscape of the first → a
digits classifier's hinge landscape → 4 replicas of MD → a brittle linear potential's MD, watched at a
collapse → a four-trial sweep → a VAE on two moons → a GFlowNet on an 8 × 8 hypergrid. Minutes on a laptop;
the pictures show how the panes look, not good models.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from PySide6.QtCore import QCoreApplication, QEventLoop

from ..errors import BoltzmatchError
from .worker import Worker

TINY_SCHNET = {"cutoff": "4.0", "n_interactions": "1", "n_features": "16", "n_rbf": "8"}


def wait_for(worker: Worker | None, timeout: float = 600.0) -> None:
    """Spin the event loop until ``worker`` has finished (its signals delivered); raise its error."""
    if worker is None:
        raise BoltzmatchError("nothing was started")
    errors: list[str] = []
    worker.signals.error.connect(lambda message, _details: errors.append(message))
    deadline = time.monotonic() + timeout
    while not worker.done and time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    for _ in range(20):  # deliver the queued result/finished signals
        QCoreApplication.processEvents()
    if not worker.done:
        raise BoltzmatchError(f"{worker.name} did not finish within {timeout:.0f} s")
    if errors:
        raise BoltzmatchError(f"{worker.name}: {errors[0]}")


def generate_data(window, time: float = 0.15) -> None:  # noqa: A002  (ps: 300 steps of 0.5 fs)
    pane = window.data
    pane.system.setCurrentText("ethanol")
    pane.calculator.setCurrentText("xtb")
    pane.time.setValue(time)
    pane.interval.setValue(10)
    pane.start_generate()
    wait_for(pane.worker)


def set_tiny_model(window) -> None:
    window.model.name.setCurrentText("schnet")
    for key, value in TINY_SCHNET.items():
        window.model.fields[key].setText(value)


def train_runs(window) -> None:
    pane = window.train
    pane.new.setChecked(True)
    pane.objective.setCurrentText("energy-forces")
    pane.epochs.setValue(3)
    pane.batch_size.setValue(8)
    pane.start()
    wait_for(pane.worker)
    pane.select_run(pane.current)
    pane.tune.setChecked(True)
    pane.objective.setCurrentText("fisher")
    pane.epochs.setValue(2)
    pane.lr.setText("1e-4")
    pane.start()
    wait_for(pane.worker)


def compare_runs(window) -> None:
    """Both runs judged on a separately seeded xTB trajectory (the training frames would flatter them)."""
    from .. import generate

    pane = window.compare
    test = window.session.new_path("ethanol-xtb-500K-test", ".xyz")
    generate("ethanol", out=test, calculator="xtb", temperature=500.0, time=0.1, interval=10, timestep=0.5,
             equilibration=100, seed=7, progress=False)
    pane.test.edit.setText(str(test))
    pane.set_checked(window.session.runs())
    pane.replicas.setValue(4)
    pane.time.setValue(0.05)
    pane.start()
    wait_for(pane.worker)


def landscape_of_first(window) -> None:
    pane = window.landscape
    pane.run_box.setCurrentIndex(0)
    pane.kind.button(0).setChecked(True)
    pane.grid.setValue(7)
    pane.max_frames.setValue(10)
    pane.start()
    wait_for(pane.worker)


def simulate_first(window) -> None:
    pane = window.simulate
    pane.run_box.setCurrentIndex(0)
    pane.replicas.setValue(4)
    pane.time.setValue(0.1)
    pane.start()
    wait_for(pane.worker)


def write_sweep_yaml(window) -> Path:
    fixed = {k: {"value": yaml.safe_load(v)} for k, v in TINY_SCHNET.items() if k != "n_features"}
    config = {"method": "grid", "metric": {"name": "val_loss", "goal": "minimize"},
              "parameters": {"data": {"value": str(window.session.data)}, "epochs": {"value": 3}, **fixed,
                             "n_features": {"values": [8, 16]}, "lr": {"values": [1e-3, 3e-3]}}}
    path = window.session.workdir / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sweep_four_trials(window) -> None:
    pane = window.sweeps
    pane.config.set_text(write_sweep_yaml(window))
    pane.start()
    wait_for(pane.worker)


def generative_vae(window) -> None:
    pane = window.generative
    pane.family.setCurrentText("vae")
    pane.data.setCurrentText("moons")
    pane.epochs.setValue(2)
    pane.start()
    wait_for(pane.worker)


def gflownet_hypergrid(window) -> None:
    pane = window.gflownets
    pane.env.setCurrentText("hypergrid")
    pane.ndim.setValue(2)
    pane.height.setValue(8)
    pane.trajectories.setValue(3200)
    pane.batch.setValue(32)
    pane.start()
    wait_for(pane.worker)


def compare_ks(window) -> None:
    """The KS plots of the comparison just made."""
    pane = window.compare
    pane.tabs.setCurrentIndex([pane.tabs.tabText(i) for i in range(pane.tabs.count())].index("KS plots"))


def landscape_of_classifier(window) -> None:
    """A digits classifier (a few epochs) and its hinge-loss landscape."""
    from ..generative.train import train_generative

    train_generative("classifier", "digits", out=window.session.workdir / "digits-classifier", epochs=3, lr=1e-3,
                     options={"hidden": [32]}, progress=False)
    pane = window.landscape
    pane.objective.setCurrentIndex(pane.objective.findData("hinge"))
    pane.kind.button(0).setChecked(True)  # random directions
    pane.grid.setValue(9)
    pane.max_frames.setValue(300)
    pane.start()
    wait_for(pane.worker)


def simulate_to_collapse(window) -> None:
    """A linear potential fitted without regularisation, run at 2,000 K until its replicas collapse; the
    trajectory tab opens the first at its collapse."""
    from .. import train

    run = window.session.workdir / "linear-brittle"
    train(window.session.data, out=run, objective="energy", model="linear", config={"n_rbf": 6, "cutoff": 4.0},
          solver="closed-form", temperature=500, ridge=1e-8, progress=False)
    window.session.add_run(run)
    pane = window.simulate
    pane.refresh_runs()
    pane.run_box.setCurrentIndex(pane.run_box.findData(str(run)))
    pane.replicas.setValue(4)
    pane.temperature.setValue(2000.0)
    pane.time.setValue(0.5)
    pane.start()
    wait_for(pane.worker)
    pane.temperature.setValue(500.0)
    pane.tabs.setCurrentIndex(1)


#: (screenshot label, step); the label's first word names the pane shown
STEPS = [("data", generate_data), ("model", set_tiny_model), ("train", train_runs), ("compare", compare_runs),
         ("compare-ks", compare_ks), ("landscape", landscape_of_first),
         ("landscape-classifier", landscape_of_classifier), ("simulate", simulate_first),
         ("simulate-trajectory", simulate_to_collapse), ("sweeps", sweep_four_trials),
         ("generative", generative_vae), ("gflownets", gflownet_hypergrid)]


def walk_and_capture(window, out: Path) -> list[Path]:
    """Run :data:`STEPS` in order, showing each pane and saving ``out/NN-pane.png`` after its step."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for k, (name, step) in enumerate(STEPS, 1):
        window.show_pane(getattr(window, name.split("-")[0]))
        QCoreApplication.processEvents()
        step(window)
        for _ in range(10):
            QCoreApplication.processEvents()
        path = out / f"{k:02d}-{name}.png"
        if not window.grab().save(str(path)):
            raise BoltzmatchError(f"could not write {path}")
        saved.append(path)
        print(f"saved {path}", flush=True)
    return saved
