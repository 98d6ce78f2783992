"""``simulate``: batched MD end to end: stable and unstable models, resume, kills, the ASE calculator."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.io import read

import boltzmatch
from boltzmatch.data import read_structures
from boltzmatch.simulate import BoltzmatchCalculator, simulate
from boltzmatch.simulate.output import read_thermo
from helpers import HarmonicWell

SCHNET = {"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0}


@pytest.fixture
def frame(ethanol_xtb):
    return read_structures(ethanol_xtb)[0]


def test_a_stable_model_runs_every_replica_to_the_end(tmp_path, frame):
    model = HarmonicWell(k=20.0, centres=frame.positions)  # thermal bond changes ≈ 0.05 Å
    s = boltzmatch.simulate(model, [frame], out=tmp_path / "sim", replicas=6, time=0.5, timestep=0.5, interval=10,
                 friction=0.05, seed=1, progress=False)
    assert s["complete"] and s["n_collapsed"] == 0
    assert s["time_to_collapse_ps"] == [0.5] * 6 and s["median_time_to_collapse_ps"] == 0.5
    assert 300 < s["mean_temperature"] < 700
    frames = read_structures(tmp_path / "sim" / "trajectories" / "replica_003.xyz")
    assert len(frames) == 0.5 * 1000 / 0.5 / 10 + 1
    assert read(tmp_path / "sim" / "trajectories" / "replica_003.xyz", index=-1).info["time_ps"] == 0.5
    thermo = read_thermo(tmp_path / "sim" / "thermo.csv")
    assert len(thermo["step"]) == 6 * 101 and set(thermo["replica"].tolist()) == set(range(6))
    assert json.loads((tmp_path / "sim" / "summary.json").read_text()) == s
    assert not (tmp_path / "sim" / "checkpoint.pt").exists()


def test_random_weights_collapse_replicas_but_never_crash_the_run(tmp_path, ethanol_xtb):
    torch.manual_seed(0)
    model = boltzmatch.build_model(SCHNET)
    s = simulate(model, ethanol_xtb, out=tmp_path / "sim", replicas=8, time=0.5, interval=10, progress=False)
    assert s["complete"] and s["n_collapsed"] >= 1
    thermo = read_thermo(tmp_path / "sim" / "thermo.csv")
    for r in range(8):
        times = thermo["time_ps"][thermo["replica"] == r]
        frames = read_structures(tmp_path / "sim" / "trajectories" / f"replica_{r:03d}.xyz")
        # one frame per thermo line, then (issue 37) the frame the criterion fired on, and nothing after it
        ends_with_collapse = s["collapsed"][r] and s["collapse_reason"][r] != "non-finite"
        assert len(frames) == len(times) + ends_with_collapse
        if ends_with_collapse:
            from ase.io import read

            last = read(tmp_path / "sim" / "trajectories" / f"replica_{r:03d}.xyz", index=-1)
            assert last.info["collapse"] == s["collapse_reason"][r]
            assert last.info["time_ps"] == pytest.approx(s["time_to_collapse_ps"][r])
        if s["collapsed"][r]:
            assert times.max() <= s["time_to_collapse_ps"][r]
            assert s["collapse_reason"][r] in ("graph", "bond", "non-finite", "temperature")
        else:
            assert s["time_to_collapse_ps"][r] == 0.5


def test_reused_neighbour_pairs_leave_every_output_byte_identical(tmp_path, ethanol_xtb):
    """Pairs reused between steps (default skin) against a search every step (skin 0), with replicas
    collapsing and leaving the batch mid-run: the same files, byte for byte; the loop's timing is recorded."""
    torch.manual_seed(0)
    model = boltzmatch.build_model(SCHNET)
    runs = {}
    for skin in (0.0, 1.0):
        runs[skin] = simulate(model, ethanol_xtb, out=tmp_path / f"skin{skin}", replicas=8, time=0.3, interval=5,
                              progress=False, skin=skin)
    assert runs[1.0]["n_collapsed"] >= 1  # the batch shrank on the way
    assert runs[1.0]["time_to_collapse_ps"] == runs[0.0]["time_to_collapse_ps"]
    for name in ["thermo.csv"] + [f"trajectories/replica_{r:03d}.xyz" for r in range(8)]:
        assert (tmp_path / "skin1.0" / name).read_bytes() == (tmp_path / "skin0.0" / name).read_bytes(), name
    steps = runs[1.0]["steps"]
    timing = runs[1.0]["timing"]
    assert runs[0.0]["timing"]["neighbor_searches"] == steps  # skin 0: every step
    assert 1 <= timing["neighbor_searches"] < steps
    assert 0 < timing["model_seconds"] < timing["loop_seconds"] and 0 <= timing["outside_model_fraction"] < 1


class InterruptAfter(torch.nn.Module):
    """Wraps a model; sends this process SIGINT (Ctrl-C) during its n-th call, in the middle of a step."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), signal.SIGINT)
        return self.model(batch)


@pytest.mark.parametrize("integrator", ["langevin", "nose-hoover"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, frame, integrator):
    options = dict(replicas=3, time=0.2, interval=10, seed=4, integrator=integrator, progress=False)
    full = simulate(HarmonicWell(k=20.0, centres=frame.positions), [frame], out=tmp_path / "full", **options)
    with pytest.raises(KeyboardInterrupt):
        simulate(InterruptAfter(HarmonicWell(k=20.0, centres=frame.positions), 157), [frame], out=tmp_path / "cut",
                 **options)
    partial = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert not partial["complete"] and (tmp_path / "cut" / "checkpoint.pt").exists()
    resumed = simulate(HarmonicWell(k=20.0, centres=frame.positions), [frame], out=tmp_path / "cut", resume=True,
                       **options)
    assert resumed["complete"] and resumed["time_to_collapse_ps"] == full["time_to_collapse_ps"]
    assert (tmp_path / "cut" / "thermo.csv").read_text() == (tmp_path / "full" / "thermo.csv").read_text()
    for r in range(3):
        name = f"trajectories/replica_{r:03d}.xyz"
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text()


def test_resume_refuses_other_settings(tmp_path, frame):
    with pytest.raises(KeyboardInterrupt):
        simulate(InterruptAfter(HarmonicWell(k=20.0, centres=frame.positions), 50), [frame], out=tmp_path / "s",
                 replicas=2, time=0.1, progress=False)
    with pytest.raises(boltzmatch.BoltzmatchError, match="other settings"):
        simulate(HarmonicWell(k=20.0, centres=frame.positions), [frame], out=tmp_path / "s", replicas=2, time=0.2,
                 resume=True, progress=False)


def test_a_killed_simulate_leaves_valid_files(tmp_path, ethanol_xtb):
    sim = tmp_path / "sim"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
import boltzmatch
from boltzmatch.data import read_structures
from helpers import HarmonicWell
frame = read_structures({str(ethanol_xtb)!r})[0]
boltzmatch.simulate(HarmonicWell(k=20.0, centres=frame.positions), [frame], out={str(sim)!r}, replicas=4,
                    time=1000.0, interval=5, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (sim / "summary.json").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    summary = json.loads((sim / "summary.json").read_text())
    assert summary["complete"] is False and len(summary["time_to_collapse_ps"]) == 4
    for r in range(4):
        frames = read_structures(sim / "trajectories" / f"replica_{r:03d}.xyz")
        assert len(frames) >= 1 and np.isfinite(frames[-1].positions).all()
    assert len(read_thermo(sim / "thermo.csv")["step"]) >= 4


def test_cli_simulate_prints_a_summary_and_errors_are_one_line(tmp_path, ethanol_xtb):
    run = tmp_path / "lin"
    boltzmatch.train(ethanol_xtb, out=run, model="linear", config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form",
                     ridge=1e-8,
                     objective="energy", progress=False)
    ok = subprocess.run([sys.executable, "-m", "boltzmatch", "simulate", str(run), "--start", str(ethanol_xtb),
                         "--replicas", "2", "--time", "0.05", "--out", str(tmp_path / "sim"), "--quiet"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "median time to collapse (ps)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "boltzmatch", "simulate", str(run), "--start", str(ethanol_xtb),
                          "--replicas", "0", "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "boltzmatch: error: --replicas must be at least 1, got 0"


def test_calculator_forces_are_minus_the_energy_gradient_and_drive_ase_md(tmp_path, ethanol_xtb, frame):
    torch.manual_seed(0)
    model = boltzmatch.build_model({**SCHNET, "dtype": "float64"})
    atoms = frame.copy()
    atoms.calc = BoltzmatchCalculator(model=model)
    forces = atoms.get_forces()
    h = 1e-5
    for a, k in [(0, 0), (4, 2), (8, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, k] += h
        minus.positions[a, k] -= h
        plus.calc = minus.calc = BoltzmatchCalculator(model=model)
        numeric = -(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h)
        assert forces[a, k] == pytest.approx(numeric, abs=1e-6)
    from ase import units
    from ase.md.verlet import VelocityVerlet

    VelocityVerlet(atoms, 0.5 * units.fs).run(5)
    assert np.isfinite(atoms.get_potential_energy())
