"""GFlowNets on enumerable targets, every loss, exact judgement (issue 14, first part).

- hypergrid ndim 2, height 8 (torchgfn's reward, R0 0.1, R1 0.5, R2 2);
- alanine dipeptide φ/ψ on a 36 × 36 torsion grid, R = exp(−βU) with Amber (OpenMM) at 300 K, the
  rest of the molecule held fixed.
Each loss on-policy (ε = 0) and with ε = 0.1 exploration; batch 64, 160,000 trajectories; exact L1
and log Z against the truth, the empirical L1 from 10,000
samples as torchgfn reports it. Not yet here: larger grids, Tetris, and the same runs with torchgfn 2.x
in its own venv.

Usage: python benchmarks/gflownet.py   → benchmarks/results/gflownet.{json,md}
"""

from __future__ import annotations

import shutil

from common import CACHE, write_results

from boltzmatch.gflownet import train_gflownet

CASES = [("hypergrid", {"ndim": 2, "height": 8}, 160_000),
         ("torsions", {"bins": 36, "temperature": 300.0, "energy": "openmm"}, 160_000)]


def main() -> None:
    rows, results = [], {}
    for env, options, trajectories in CASES:
        label = f"{env} " + ",".join(f"{k}={v}" for k, v in options.items() if k != "energy")
        for loss in ("tb", "db", "subtb", "fm"):
            for epsilon in (0.0, 0.1):
                out = CACHE / "gflownet" / f"{env}_{'_'.join(map(str, options.values()))}_{loss}_{epsilon}"
                if out.exists():
                    shutil.rmtree(out)
                summary = train_gflownet(env, out=out, env_options=options, loss=loss, batch_size=64,
                                         n_trajectories=trajectories, epsilon=epsilon, eval_every=250, progress=True)
                results[f"{label} {loss} ε={epsilon}"] = summary
                rows.append([label, loss, epsilon, summary["l1_exact"], summary["l1_empirical"], summary["jsd_exact"],
                             summary["log_z"], summary["log_z_true"], summary["wall_seconds"]])
    print(write_results("gflownet", results, rows, ["target", "loss", "ε", "L1 exact", "L1 empirical (10k)",
                                                      "JSD", "log Z", "log Z true", "wall (s)"]))


if __name__ == "__main__":
    main()
