"""The linear potential on GFN2-xTB ethanol at 500 K: closed-form energy least squares vs Fisher.

Reports the time of the closed-form Fisher fit on 10,000 frames (goal: under 10 s) and the
held-out energy and force MAE of both fits (Fisher should trade a little energy accuracy for
much better forces).

Usage: python benchmarks/linear_closed_form.py
Writes benchmarks/results/linear_closed_form.{json,md}.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import ethanol_data, write_results

from boltzmatch.data import read_structures
from boltzmatch.data.packed import PackedStructures
from boltzmatch.models import build_model, energy_and_forces
from boltzmatch.training import fit_closed_form

CONFIG = {"name": "linear", "elements": [1, 6, 8], "n_rbf": 12, "cutoff": 5.0, "angular": True, "dtype": "float64"}


def errors(model, packed: PackedStructures) -> tuple[float, float]:
    batch = packed.batch(np.arange(len(packed))).to(dtype=torch.float64)
    energy, forces = energy_and_forces(model, batch)
    energy, forces = energy.detach(), forces.detach()
    return (1000 * float((energy - batch.energy).abs().mean()), 1000 * float((forces - batch.forces).abs().mean()))


def main() -> None:
    train = PackedStructures(read_structures(ethanol_data("ethanol500K_10000", frames=10000, seed=11)),
                             dtype=torch.float64)
    test = PackedStructures(read_structures(ethanol_data("ethanol500K_test500", frames=500, seed=2)),
                            dtype=torch.float64)
    results, rows = {"n_train": len(train), "n_test": len(test)}, []
    for objective in ("energy", "fisher"):
        model = build_model(CONFIG)
        model.fit_pair_basis(train.batch(np.arange(len(train))))  # as `boltzmatch train` does
        start = time.perf_counter()
        info = fit_closed_form(model, train, np.arange(len(train)), objective=objective, temperature=500.0,
                               ridge=1e-10, batch_size=500)
        seconds = time.perf_counter() - start
        energy_mae, force_mae = errors(model, test)
        results[objective] = {"seconds": seconds, "energy_mae_meV": energy_mae, "force_mae_meV_A": force_mae,
                              "condition_number": info["condition_number"]}
        rows.append([objective, f"{seconds:.2f}", f"{energy_mae:.1f}", f"{force_mae:.1f}"])
    print(write_results("linear_closed_form", results, rows,
                        ["closed form", "fit time (s), 10k frames", "energy MAE (meV)", "force MAE (meV/Å)"]))


if __name__ == "__main__":
    main()
