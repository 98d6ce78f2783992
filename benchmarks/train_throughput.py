"""Training throughput of boltzmatch's SchNet and PaiNN against SchNetPack 2.1.1, side by side (issue 3).

Same data (1000 GFN2-xTB ethanol frames at 500 K + 100 validation frames, one split file read by
both), same architecture (SCHNET_CONFIG: 64 features, 3 interactions, 20 Gaussians, 5 Å cutoff),
same loss (energy MSE per atom + 100 × force MSE), same optimiser (Adam, lr 1e-3, constant), batch
size 16, the same number of epochs, the same EMA of weights (decay 0.995 by default, SchNetPack's
``spktrain`` default; ``--ema 0`` turns it off), the best validation model kept by both. Throughput is
training structures per second of wall time over the whole training call (data set-up, training
and the per-epoch validation included, for both). Force MAE on 500 held-out frames of a separately
seeded trajectory. Goal: ≥ 1.5× SchNetPack's throughput at equal or better force MAE.

SchNetPack runs in its own virtual environment (``benchmarks/.peers/schnetpack``, torch 2.4.1;
see md_throughput.py's docstring or pass ``--install-peer``) through ``peers/schnetpack_train.py``,
which follows SchNetPack's own recipe (ASE db, AtomsDataModule, ASENeighborList, RemoveOffsets,
AtomisticTask, Lightning Trainer).

Usage: python benchmarks/train_throughput.py [--epochs 50] [--models schnet painn]
       [--peer-models schnet painn] [--seeds 0 1] [--ema 0.995] [--num-workers 0]
Writes benchmarks/results/train_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import numpy as np
from common import (
    CACHE,
    PEER_PYTHON,
    RESULTS,
    SCHNET_CONFIG,
    ethanol_data,
    install_schnetpack_peer,
    make_split,
    write_results,
)

import boltzmatch

PEER_SCRIPT = PEER_PYTHON.parents[3] / "peers" / "schnetpack_train.py"
CONFIGS = {"schnet": SCHNET_CONFIG, "painn": SCHNET_CONFIG}
COMMON = {"batch_size": 16, "lr": 1e-3, "energy_weight": 1.0, "force_weight": 100.0}


def ours(model: str, data, split, test, epochs: int, seed: int, ema: float) -> dict:
    run = CACHE / f"train_throughput_{model}_{seed}"
    start = time.perf_counter()
    summary = boltzmatch.train(data, out=run, model=model, config=CONFIGS[model], epochs=epochs, schedule="none",
                               ema_decay=ema or None, split_file=str(split), seed=seed, progress=True, **COMMON)
    wall = time.perf_counter() - start
    errors = boltzmatch.evaluate(run, test)
    return {"wall_seconds": wall, "epochs": summary["epochs"], "n_train": summary["n_train"],
            "structures_per_second": summary["n_train"] * summary["epochs"] / wall,
            "test": {k: errors[k] for k in ("energy_mae", "force_mae", "energy_rmse", "force_rmse")}}


def peer(model: str, data, split, test, epochs: int, seed: int, num_workers: int, ema: float) -> dict:
    if not PEER_PYTHON.exists():
        return {"error": f"no SchNetPack environment at {PEER_PYTHON}; run with --install-peer"}
    cmd = [str(PEER_PYTHON), str(PEER_SCRIPT), "--model", model, "--config", json.dumps(CONFIGS[model]),
           "--train", str(data), "--split", str(split), "--test", str(test),
           "--workdir", str(CACHE / f"train_throughput_spk_{model}_{seed}"), "--epochs", str(epochs),
           "--batch-size", str(COMMON["batch_size"]), "--lr", str(COMMON["lr"]),
           "--energy-weight", str(COMMON["energy_weight"]), "--force-weight", str(COMMON["force_weight"]),
           "--num-workers", str(num_workers), "--seed", str(seed), "--ema", str(ema)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=6 * 3600)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()
        return {"error": tail[-1] if tail else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--models", nargs="+", default=["schnet", "painn"], choices=["schnet", "painn"])
    parser.add_argument("--peer-models", nargs="*", default=["schnet", "painn"], choices=["schnet", "painn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--ema", type=float, default=0.995, help="EMA decay for both trainers; 0: off")
    parser.add_argument("--num-workers", type=int, default=0, help="SchNetPack's data-loader workers")
    parser.add_argument("--install-peer", action="store_true")
    parser.add_argument("--summarize", action="store_true", help="only rebuild the table from the last results")
    args = parser.parse_args()
    if args.summarize:
        results = json.loads((RESULTS / "train_throughput.json").read_text())
        results.pop("machine", None)
        return summarize(results)
    if args.install_peer:
        install_schnetpack_peer()

    data = ethanol_data("ethanol500K_train1000", frames=1100, seed=1)
    test = ethanol_data("ethanol500K_test500", frames=500, seed=2)
    split = make_split(1100, 1000, CACHE / "train_throughput_split.npz")
    results: dict = {"config": CONFIGS, "common": COMMON, "epochs": args.epochs, "seeds": args.seeds,
                     "num_workers": args.num_workers, "ema": args.ema, "boltzmatch": {}, "schnetpack": {}}
    # a run of some models keeps the other models' entries of an earlier run with the same settings
    previous = RESULTS / "train_throughput.json"
    if previous.exists():
        old = json.loads(previous.read_text())
        if all(old.get(k) == results[k] for k in ("epochs", "seeds", "ema", "common")):
            for side, models in (("boltzmatch", args.models), ("schnetpack", args.peer_models)):
                results[side].update({m: r for m, r in old.get(side, {}).items() if m not in models})
    for model in args.models:
        for seed in args.seeds:
            results["boltzmatch"].setdefault(model, {})[str(seed)] = r = ours(model, data, split, test, args.epochs,
                                                                             seed, args.ema)
            print(f"boltzmatch {model} seed {seed}: {r['structures_per_second']:.1f} structures/s, "
                  f"force MAE {1000 * r['test']['force_mae']:.1f} meV/Å", flush=True)
    for model in args.peer_models:
        for seed in args.seeds:
            results["schnetpack"].setdefault(model, {})[str(seed)] = r = peer(model, data, split, test, args.epochs,
                                                                             seed, args.num_workers, args.ema)
            print(f"SchNetPack {model} seed {seed}: {r}", flush=True)

    summarize(results)


def summarize(results: dict) -> None:
    """Table and goals. "Equal" force MAE: the mean difference lies within the standard error of
    that difference estimated from the seeds (one seed each: strictly ≤)."""

    def values(side: str, model: str, key) -> list[float]:
        return [key(r) for r in results[side].get(model, {}).values() if "error" not in r]

    rows, goals = [], {}
    for model in sorted(results["boltzmatch"]):
        speed = float(np.mean(values("boltzmatch", model, lambda r: r["structures_per_second"])))
        maes = values("boltzmatch", model, lambda r: 1000 * r["test"]["force_mae"])
        peer_speeds = values("schnetpack", model, lambda r: r["structures_per_second"])
        peer_maes = values("schnetpack", model, lambda r: 1000 * r["test"]["force_mae"])
        ratio = speed / float(np.mean(peer_speeds)) if peer_speeds else None
        rows.append([model, "boltzmatch", f"{speed:.1f}", " / ".join(f"{m:.1f}" for m in maes),
                     f"{np.mean(maes):.1f}", "–" if ratio is None else f"{ratio:.2f}"])
        if peer_speeds:
            rows.append([model, "SchNetPack 2.1.1", f"{np.mean(peer_speeds):.1f}",
                         " / ".join(f"{m:.1f}" for m in peer_maes), f"{np.mean(peer_maes):.1f}", "1.00"])
            difference = float(np.mean(maes) - np.mean(peer_maes))
            spread = (float(np.sqrt(np.var(maes, ddof=1) / len(maes) + np.var(peer_maes, ddof=1) / len(peer_maes)))
                      if min(len(maes), len(peer_maes)) > 1 else 0.0)
            goals[f"{model}: throughput ≥ 1.5× SchNetPack"] = ratio >= 1.5
            goals[f"{model}: force MAE equal (within seed noise) or better"] = difference <= spread
            results[f"{model}_ratio"] = ratio
            results[f"{model}_mae_difference_meV_A"] = {"mean": difference, "standard_error": spread}
    results["goals"] = goals
    print(write_results("train_throughput", results, rows,
                        ["model", "trainer", "structures/s", "force MAE per seed (meV/Å)", "mean", "× SchNetPack"]))
    print(json.dumps(goals, ensure_ascii=False))


if __name__ == "__main__":
    main()
