"""Force accuracy of SchNet and PaiNN on GFN2-xTB ethanol at 500 K within a CPU-time budget.

Issue 3's target: 1000 training frames (test frames from a separately seeded trajectory);
energy+force training for at most 30 CPU minutes; SchNet force MAE ≤ 40 meV/Å, PaiNN ≤ 25.

Usage: python benchmarks/train_accuracy.py [--minutes 25] [--models schnet painn]
Writes benchmarks/results/train_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import json

from common import RESULTS, ethanol_data, write_results

import boltzmatch

CONFIGS = {
    "schnet": {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20},
    "painn": {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20},
}
TARGETS = {"schnet": 40.0, "painn": 25.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--models", nargs="+", default=["schnet", "painn"])
    parser.add_argument("--train-frames", type=int, default=1000)
    parser.add_argument("--test-frames", type=int, default=500)
    args = parser.parse_args()
    train_path = ethanol_data(f"ethanol500K_train{args.train_frames}", frames=args.train_frames + 100, seed=1)
    test_path = ethanol_data(f"ethanol500K_test{args.test_frames}", frames=args.test_frames, seed=2)
    # keep earlier models' rows: a run of one model updates only its own entry
    previous = RESULTS / "train_accuracy.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    results.pop("machine", None)
    results.setdefault("models", {})
    results["minutes"] = args.minutes
    for name in args.models:
        run = RESULTS / f"run_{name}"
        summary = boltzmatch.train(train_path, out=run, model=name, config=CONFIGS[name], epochs=100000,
                                   batch_size=16, lr=1e-3, schedule="plateau", patience=60, ema_decay=0.995,
                                   val_fraction=100 / (args.train_frames + 100), test_fraction=0.0, seed=0,
                                   max_minutes=args.minutes, progress=True)
        test = boltzmatch.evaluate(run, test_path)
        entry = {"epochs": summary["epochs"], "wall_minutes": summary["wall_seconds"] / 60,
                 "test_force_mae_meV_A": 1000 * test["force_mae"], "test_energy_mae_meV": 1000 * test["energy_mae"],
                 "target_force_mae_meV_A": TARGETS[name], "clip": None}
        entry["meets_target"] = entry["test_force_mae_meV_A"] <= TARGETS[name]
        results["models"][name] = entry
        rows = [[n, e["epochs"], f"{e['wall_minutes']:.1f}", f"{e['test_force_mae_meV_A']:.1f}",
                 f"{e['test_energy_mae_meV']:.1f}", e["target_force_mae_meV_A"], e["meets_target"], e.get("clip")]
                for n, e in results["models"].items()]
        print(write_results("train_accuracy", results, rows,
                            ["model", "epochs", "minutes", "force MAE (meV/Å)", "energy MAE (meV)", "target",
                             "met", "clip"]))


if __name__ == "__main__":
    main()
