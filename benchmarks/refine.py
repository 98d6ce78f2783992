"""`refine` on GFN2-xTB malonaldehyde at 500 K (issue 17; first measurements, baselines still to come).

Starts from the SchNet that ``external_models.py --part mace`` trained for 2 minutes on 1,000 frames
(seed 1), runs ``--rounds`` rounds of ``boltzmatch refine`` (16 replicas, ``--ps`` ps each, 0.5 fs,
Langevin, ``--budget`` xTB labels per round, Fisher fine-tuning ``--minutes`` per round), with
held-out force MAE on the separately seeded trajectory (seed 2). The issue's full benchmark (aspirin,
≥ 32 replicas × ≥ 100 ps, baselines at equal labels: energy+force, plain active learning, Fisher
without the loop) is not in this script yet.

Usage: python benchmarks/refine.py [--rounds 2] [--ps 3] [--budget 32] [--minutes 1.5]
Writes benchmarks/results/refine.{json,md} and the refine folder's plot under benchmarks/results/refine/.
"""

from __future__ import annotations

import argparse
import shutil

from common import CACHE, RESULTS, molecule_data, write_results

import boltzmatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ps", type=float, default=3.0)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=1.5)
    args = parser.parse_args()
    train = molecule_data("malonaldehyde", "malonaldehyde500K_train1000", frames=1000, seed=1)
    test = molecule_data("malonaldehyde", "malonaldehyde500K_test1000", frames=1000, seed=2)
    start = CACHE / "external_models" / "runs" / "schnet"
    if not (start / "model.pt").exists():
        boltzmatch.train(train, out=start, model="schnet", lr=1e-3, batch_size=16, epochs=100000, max_minutes=2.0)
    out = CACHE / "refine" / "malonaldehyde"
    shutil.rmtree(out, ignore_errors=True)
    summary = boltzmatch.refine(start, data=train, out=out, reference="xtb", temperature=500.0, rounds=args.rounds,
                                replicas=16, time=args.ps, label_budget=args.budget, epochs=100000, lr=3e-4,
                                batch_size=16, max_minutes=args.minutes, test=test, seed=0)
    (RESULTS / "refine").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "refine.png", RESULTS / "refine" / "refine.png")
    rows = [[r["round"], r["labels_used"], f"{r['median_time_to_collapse_ps']:.2f}",
             f"{r['collapsed']}/{r['replicas']}", f"{r['force_mae_meV_A']:.1f}"] for r in summary["rows"]]
    print(write_results("refine", {"settings": vars(args), "rounds": summary["rows"]}, rows,
                        ["round", "xTB labels used", f"median collapse (ps, of {args.ps:g})", "collapsed",
                         "test force MAE (meV/Å)"]))


if __name__ == "__main__":
    main()
