"""Overhead of the sweep runner per trial: the same `boltzmatch train` alone and as a one-trial sweep.

Round robin (alone, sweep, alone, sweep, …), wall time of each, on cached xTB ethanol (200 frames,
a small SchNet, 15 epochs ≈ 20 s). The sweep's time includes creating the study in SQLite, the
trial's subprocess, reading metrics.csv every 0.25 s and recording the result. Goal (issue 12):
≤ 5 % per trial.

Usage: python benchmarks/sweep_overhead.py [ROUNDS]
Writes benchmarks/results/sweep_overhead.{json,md}.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ethanol_data, machine, write_results

from boltzmatch.sweep import run_sweep

TRAIN = {"epochs": 15, "batch_size": 16, "lr": 1e-3, "n_interactions": 2, "n_features": 32, "n_rbf": 16,
         "cutoff": 4.5}


def alone(data: Path, work: Path) -> float:
    config = work / "model.yaml"
    config.write_text(yaml.safe_dump({"name": "schnet", **{k: TRAIN[k] for k in ("n_interactions", "n_features",
                                                                                "n_rbf", "cutoff")}}))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "boltzmatch", "train", str(data), "--config", str(config), "--epochs",
                    str(TRAIN["epochs"]), "--batch-size", str(TRAIN["batch_size"]), "--lr", str(TRAIN["lr"]),
                    "--out", str(work / "run"), "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - start


def as_sweep(data: Path, work: Path) -> float:
    sweep = work / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"method": "grid", "metric": {"name": "val_loss", "goal": "minimize"},
                                     "parameters": {"data": {"value": str(data)},
                                                    **{k: {"value": v} for k, v in TRAIN.items()}}}))
    start = time.perf_counter()
    run_sweep(sweep, out=work / "sweep")
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    data = ethanol_data("ethanol500K_train200", frames=200, seed=21)
    times = {"alone": [], "sweep": []}
    for r in range(rounds):
        for kind, fn in (("alone", alone), ("sweep", as_sweep)):
            with tempfile.TemporaryDirectory() as tmp:
                times[kind].append(fn(data, Path(tmp)))
            print(f"round {r + 1}: {kind} {times[kind][-1]:.2f} s", flush=True)
    ratios = [s / a for a, s in zip(times["alone"], times["sweep"], strict=True)]
    result = {"rounds": rounds, "seconds": times, "ratios": ratios, "median_overhead_percent":
              100 * (statistics.median(ratios) - 1), "machine": machine()}
    rows = [[str(i + 1), f"{a:.2f}", f"{s:.2f}", f"{100 * (s / a - 1):+.1f} %"]
            for i, (a, s) in enumerate(zip(times["alone"], times["sweep"], strict=True))]
    rows.append(["median", "", "", f"{result['median_overhead_percent']:+.1f} % (goal ≤ 5 %)"])
    print(write_results("sweep_overhead", result, rows, ["round", "train alone (s)", "one-trial sweep (s)",
                                                         "overhead"]))


if __name__ == "__main__":
    main()
