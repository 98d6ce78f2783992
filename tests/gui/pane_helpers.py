"""Steps the app's tests share."""

import boltzmatch
from boltzmatch.gui import screenshots as steps


def start_md_of_linear_model(make_window, tmp_path, data, *, ridge: float, time: float):
    """A window whose Simulate pane has started 4 replicas × ``time`` ps of a closed-form linear potential
    fitted to ``data`` with ``ridge`` (1e-2: every replica stays up for 10 ps; 1e-8: all collapse within
    20-75 fs); returns the pane."""
    run = tmp_path / f"linear-ridge{ridge:g}"
    boltzmatch.train(data, out=run, objective="energy", model="linear", config={"n_rbf": 6, "cutoff": 4.0},
                     solver="closed-form", temperature=500, ridge=ridge, progress=False)
    window = make_window()
    window.session.add_run(run)
    window.data.open(str(data))
    steps.wait_for(window.data.worker)
    sim = window.simulate
    sim.refresh_runs()
    sim.run_box.setCurrentIndex(sim.run_box.findData(str(run)))
    sim.replicas.setValue(4)
    sim.time.setValue(time)
    sim.start()
    return sim
