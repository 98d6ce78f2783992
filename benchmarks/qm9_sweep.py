"""The seed's SchNet-on-QM9 study as a W&B random sweep run locally: ≥ 24 trials, then the report.

Random search over batch_size {8, 16, 32, 64, 128, 256, 512}, epochs {4, 8, 12} and lr
log-uniform [5e-4, 1e-2] for SchNet (2 interactions, 32 features: sized for 2 CPU cores) on U0 of
a QM9 subset (1,000 random molecules, seed 0; 800/100/100 split), metric val_loss (per-atom energy
MSE of the validation split, eV²). The markdown reads out the correlation signs, the regression
slopes and which batch sizes learn fastest per epoch.

Usage: python benchmarks/qm9_sweep.py [TRIALS]
Writes benchmarks/results/qm9_sweep.{json,md} and the sweep's report into benchmarks/results/qm9_sweep/.
"""

from __future__ import annotations

import shutil
import sys
import time

import yaml
from common import CACHE, RESULTS, write_results

from boltzmatch.data.qm9 import write_qm9_db
from boltzmatch.sweep import run_sweep, write_report


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    db = CACHE / "qm9_1000.db"
    if not db.exists():
        write_qm9_db(db, limit=1000, seed=0)
    sweep_dir = CACHE / f"qm9_sweep_{trials}"
    config = {
        "method": "random", "metric": {"name": "val_loss", "goal": "minimize"}, "run_cap": trials,
        "command": ["${env}", "boltzmatch", "train", str(db), "${args}"],
        "parameters": {
            "energy_key": {"value": "energy_U0"}, "loss": {"value": "energy"}, "patience": {"value": 1000},
            "n_interactions": {"value": 2}, "n_features": {"value": 32}, "n_rbf": {"value": 16},
            "batch_size": {"values": [8, 16, 32, 64, 128, 256, 512]}, "epochs": {"values": [4, 8, 12]},
            "lr": {"distribution": "log_uniform_values", "min": 5e-4, "max": 1e-2},
        },
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"qm9_sweep_{trials}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    summary = run_sweep(path, out=sweep_dir, jobs=1)
    seconds = time.perf_counter() - start
    report = write_report(sweep_dir)
    target = RESULTS / "qm9_sweep"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "correlation.png", "parallel_coordinates.png", "metric_vs_parameters.png",
                 "curves_by_parameter.png"):
        if (sweep_dir / name).exists():
            shutil.copy(sweep_dir / name, target / name)
    corr, slopes = report["correlations"], report["slopes"]
    rows = [[name, f"{c['pearson']:+.2f}", f"{c['spearman']:+.2f}",
             f"{slopes[name]['slope']:+.3g} per {slopes[name]['per']}" if name in slopes else "–",
             f"{report['importance'].get(name, float('nan')):.2f}"] for name, c in corr.items()]
    readout = []
    for name, c in corr.items():
        sign = "lower" if c["spearman"] > 0 else "higher"
        readout.append(f"{name}: Spearman {c['spearman']:+.2f} — {sign} values gave lower val_loss")
    result = {"trials": summary["trials"], "complete": summary["complete"], "failed": summary["fail"],
              "best_value": summary.get("best_value"), "best_values": summary.get("best_values"),
              "wall_seconds": seconds, "correlations": corr, "slopes": slopes, "importance": report["importance"],
              "readout": readout}
    table = write_results("qm9_sweep", result, rows, ["parameter", "Pearson r", "Spearman ρ", "slope",
                                                       "importance"])
    with open(RESULTS / "qm9_sweep.md", "a") as handle:
        handle.write("\n" + "\n".join(readout) + f"\n\nbest val_loss {summary.get('best_value')} with "
                     f"{summary.get('best_values')}; {summary['complete']} trials in {seconds / 60:.1f} min. "
                     "Report and plots: results/qm9_sweep/report.md\n")
    print(table)
    print("\n".join(readout))


if __name__ == "__main__":
    main()
