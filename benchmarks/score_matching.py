"""Cost of one training step per objective, as a ratio to the energy-forces step, in one run.

Objectives: energy-forces, fisher, ism (exact Laplacian), ssm (k = 1), dsm; models SchNet and
PaiNN on GFN2-xTB ethanol at 500 K; and how exact ism's cost grows with atom count (ethanol,
9 atoms, vs aspirin, 21 atoms). Goals (issue 4): ssm ≤ 2.5×, dsm ≤ 1.5× the energy-forces step.

Usage: python benchmarks/score_matching.py [--batch-size 4] [--repeats 3]
Writes benchmarks/results/score_matching.{json,md}.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import CACHE, ethanol_data, write_results

from boltzmatch.data import generate, read_structures
from boltzmatch.data.packed import PackedStructures
from boltzmatch.models import build_model
from boltzmatch.objectives import make_objective

OBJECTIVES = ["energy-forces", "fisher", "ism", "ssm", "dsm"]
CONFIG = {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20}


def step_time(model, objective, batch, repeats: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss, _ = objective(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4, help="16 needs over 24 GiB for exact ism on aspirin")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    ethanol = read_structures(ethanol_data("ethanol500K_test500", frames=500, seed=2))
    aspirin_path = CACHE / "aspirin500K_64.xyz"
    if not aspirin_path.exists():
        generate("aspirin", out=aspirin_path, calculator="xtb", temperature=500, time=0.32, interval=10,
                 equilibration=200, seed=3, progress=False)
    aspirin = read_structures(aspirin_path)
    results, rows = {"batch_size": args.batch_size, "seconds": {}, "ratios": {}}, []
    for name in ("schnet", "painn"):
        torch.manual_seed(0)
        model = build_model({"name": name, **CONFIG, "elements": [1, 6, 8]})
        batch = PackedStructures(ethanol[: args.batch_size]).batch(np.arange(args.batch_size))
        objectives = {}
        for objective_name in OBJECTIVES:
            supervised = objective_name == "energy-forces"
            objectives[objective_name] = make_objective(
                objective_name, temperature=500.0, energy_weight=1.0 if supervised else 0.0,
                force_weight=100.0 if supervised else 0.0)
        # round robin: one step of each objective per round, so drifts of the machine hit all alike
        samples: dict[str, list[float]] = {k: [] for k in OBJECTIVES}
        for _ in range(args.repeats):
            for objective_name, objective in objectives.items():
                samples[objective_name].append(step_time(model, objective, batch, 1))
        seconds = {k: float(np.median(v)) for k, v in samples.items()}
        ratios = {k: v / seconds["energy-forces"] for k, v in seconds.items()}
        results["seconds"][name], results["ratios"][name] = seconds, ratios
        rows.append([name] + [f"{ratios[k]:.2f}" for k in OBJECTIVES])
        big = PackedStructures(aspirin[: args.batch_size]).batch(np.arange(args.batch_size))
        ism = make_objective("ism", temperature=500.0, energy_weight=0, force_weight=0)
        ef = make_objective("energy-forces")
        results.setdefault("ism_growth", {})[name] = {
            "ethanol_ism_over_ef": ratios["ism"],
            "aspirin_ism_over_ef": step_time(model, ism, big, 2) / step_time(model, ef, big, 2),
        }
    rows += [[f"ism/ef {m}: ethanol {g['ethanol_ism_over_ef']:.1f}×, aspirin {g['aspirin_ism_over_ef']:.1f}×"]
             for m, g in results["ism_growth"].items()]
    print(write_results("score_matching", results, rows, ["model"] + OBJECTIVES))


if __name__ == "__main__":
    main()
