"""Overhead of the sweep runner per trial: the same `boltzmatch train` runs alone and as sweep trials.

Round robin (alone, sweep, alone, sweep, …): TRIALS training runs (seeds 0…TRIALS−1) one after
the other, against a grid sweep over the same seeds, on cached xTB ethanol (200 frames, a small
SchNet, 40 epochs ≈ 12 s a run). The sweep's time includes creating the study in SQLite, each
trial's subprocess, reading metrics.csv every 0.25 s and recording results; the per-trial
overhead is the difference divided by TRIALS. Goal (issue 12): ≤ 5 % per trial.

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

TRIALS = 3
TRAIN = {"epochs": 40, "batch_size": 16, "lr": 1e-3, "n_interactions": 2, "n_features": 32, "n_rbf": 16,
         "cutoff": 4.5}


def alone(data: Path, work: Path) -> float:
    config = work / "model.yaml"
    config.write_text(yaml.safe_dump({"name": "schnet", **{k: TRAIN[k] for k in ("n_interactions", "n_features",
                                                                                "n_rbf", "cutoff")}}))
    start = time.perf_counter()
    for seed in range(TRIALS):
        subprocess.run([sys.executable, "-m", "boltzmatch", "train", str(data), "--config", str(config), "--epochs",
                        str(TRAIN["epochs"]), "--batch-size", str(TRAIN["batch_size"]), "--lr", str(TRAIN["lr"]),
                        "--seed", str(seed), "--out", str(work / f"run{seed}"), "--quiet"], check=True,
                       capture_output=True)
    return time.perf_counter() - start


def as_sweep(data: Path, work: Path) -> float:
    sweep = work / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"method": "grid", "metric": {"name": "val_loss", "goal": "minimize"},
                                     "parameters": {"data": {"value": str(data)},
                                                    "seed": {"values": list(range(TRIALS))},
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
    result = {"rounds": rounds, "trials_per_round": TRIALS, "seconds": times, "ratios": ratios,
              "median_overhead_percent": 100 * (statistics.median(ratios) - 1),
              "per_trial_overhead_s": [(s - a) / TRIALS for a, s in zip(times["alone"], times["sweep"], strict=True)],
              "machine": machine()}
    rows = [[str(i + 1), f"{a:.2f}", f"{s:.2f}", f"{(s - a) / TRIALS:+.2f}", f"{100 * (s / a - 1):+.1f} %"]
            for i, (a, s) in enumerate(zip(times["alone"], times["sweep"], strict=True))]
    rows.append(["median", "", "", "", f"{result['median_overhead_percent']:+.1f} % (goal ≤ 5 %)"])
    print(write_results("sweep_overhead", result, rows, ["round", f"{TRIALS} trains alone (s)",
                                                         f"{TRIALS}-trial sweep (s)", "per trial (s)", "overhead"]))


if __name__ == "__main__":
    main()
