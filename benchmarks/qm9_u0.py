"""U0 on QM9: boltzmatch's SchNet and PaiNN against SchNetPack 2.1.1's SchNet on one split.

A random QM9 subset from `boltzmatch data qm9` (the qm9 extra), split into train/val/test once and
saved in SchNetPack's split format (train_idx, val_idx, test_idx), which both sides read. Same
SchNet (cutoff 5 Å, 3 interactions, 64 features, 20 Gaussians), Adam 5e-4, batch size, epochs
and seed; per-element reference energies (ours: least squares on the training split;
SchNetPack: the db's QM9 atomrefs plus the mean) and the best validation model. Losses differ as
each toolkit defines them (ours per-atom energy MSE, SchNetPack total-energy MSE). Reported: U0
test MAE (meV) and training structures per second (wall time of the whole training call).
Goal (issue 12): MAE no worse, throughput ≥ 1.5×.

Usage: python benchmarks/qm9_u0.py [--n-train 2000 --n-val 500 --n-test 2000 --epochs 10]
       [--install-peer]
Writes benchmarks/results/qm9_u0.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CACHE, PEER_PYTHON, install_schnetpack_peer, write_results

import boltzmatch
from boltzmatch.data.qm9 import write_qm9_db

CONFIG = {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20}
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "schnetpack_qm9.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--models", nargs="*", default=["schnet", "painn"])
    parser.add_argument("--install-peer", action="store_true")
    args = parser.parse_args()
    if args.install_peer:
        install_schnetpack_peer()
    total = args.n_train + args.n_val + args.n_test
    db = CACHE / f"qm9_{total}.db"
    if not db.exists():
        write_qm9_db(db, limit=total, seed=0)
    order = np.random.default_rng(0).permutation(total)
    split = CACHE / f"qm9_{total}_split.npz"
    np.savez(split, train_idx=order[:args.n_train], val_idx=order[args.n_train:args.n_train + args.n_val],
             test_idx=order[args.n_train + args.n_val:])
    results, rows = {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test, "epochs": args.epochs,
                     "batch_size": args.batch_size, "config": CONFIG}, []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            start = time.perf_counter()
            summary = boltzmatch.train(db, out=Path(tmp) / model, model=model, config=CONFIG, objective="energy",
                                       epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=1000,
                                       split_file=str(split), data_options={"energy_key": "energy_U0"})
            wall = time.perf_counter() - start
            results[f"boltzmatch_{model}"] = r = {"wall_seconds": wall,
                                                  "test_u0_mae_meV": summary["test_energy_mae_meV"],
                                                  "structures_per_second": args.n_train * args.epochs / wall}
            rows.append([f"boltzmatch {model}", f"{r['test_u0_mae_meV']:.1f}", f"{r['structures_per_second']:.1f}"])
        if PEER_PYTHON.exists():
            out = subprocess.run([str(PEER_PYTHON), str(PEER_SCRIPT), "--db", str(db), "--split", str(split),
                                  "--config", json.dumps(CONFIG), "--workdir", str(Path(tmp) / "peer"),
                                  "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                                  "--lr", str(args.lr)], capture_output=True, text=True)
            if out.returncode == 0:
                results["schnetpack_schnet"] = r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(["SchNetPack 2.1.1 schnet", f"{r['test_u0_mae_meV']:.1f}",
                             f"{r['structures_per_second']:.1f}"])
            else:
                results["schnetpack_schnet"] = {"error": out.stderr.strip().splitlines()[-1:]}
        else:
            results["schnetpack_schnet"] = {"error": f"no SchNetPack environment at {PEER_PYTHON}; --install-peer"}
    peer = results.get("schnetpack_schnet", {})
    if "structures_per_second" in peer and "boltzmatch_schnet" in results:
        ours = results["boltzmatch_schnet"]
        results["speedup_schnet"] = ours["structures_per_second"] / peer["structures_per_second"]
        rows.append(["ratio (SchNet)", f"{ours['test_u0_mae_meV'] / peer['test_u0_mae_meV']:.2f}× MAE",
                     f"{results['speedup_schnet']:.2f}×"])
    print(write_results("qm9_u0", results, rows, ["model", "U0 test MAE (meV)", "train structures/s"]))


if __name__ == "__main__":
    main()
