"""Which radial basis PaiNN should take, by what it learns from: Gaussians versus sin(nπr/r_c)/r (Bessel).

The measurement behind ``models.painn.default_radial_basis``. Each case trains the same PaiNN (64 features,
3 interactions, 20 basis functions, 5 Å cutoff) twice, once per basis, everything else equal (data, split,
seed, epochs), and scores it on held-out frames (a separately seeded trajectory, or QM9 molecules outside
the training set):

- ``ethanol-forces``, ``toluene-forces``: energies and forces (per-atom energy MSE + 100 × force MSE), force MAE.
  Toluene was never used while developing the choice.
- ``ethanol-energies``, ``qm9-energies``: energies alone, energy MAE (QM9: U0 of 2,000 molecules, 10 epochs).
- ``ethanol-dsm``, ``toluene-dsm``: positions alone (denoising score matching at the σ derived from the data,
  antithetic pairs, β at 500 K), ``ethanol-ssm`` (sliced score matching, one Rademacher probe): force MAE and the
  Pearson r of the forces with xTB's.

Usage: python benchmarks/painn_radial_basis.py [--cases ethanol-forces ...] [--seeds 0 1] [--epochs 50]
Writes benchmarks/results/painn_radial_basis.{json,md}; a run of some cases keeps the others' entries.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from common import CACHE, RESULTS, SCHNET_CONFIG, make_split, molecule_data, qm9_data, write_results

import boltzmatch
from boltzmatch.analysis.evaluate import predict
from boltzmatch.data import read_structures
from boltzmatch.data.packed import PackedStructures

BASES = ("gaussian", "bessel")
SUPERVISED = {"batch_size": 16, "lr": 1e-3, "schedule": "none", "ema_decay": 0.995}
#: case → (objective, the score that judges it, training options beyond SUPERVISED)
CASES = {
    "ethanol-forces": ("energy-forces", "force_mae", {"energy_weight": 1.0, "force_weight": 100.0}),
    "toluene-forces": ("energy-forces", "force_mae", {"energy_weight": 1.0, "force_weight": 100.0}),
    "ethanol-energies": ("energy", "energy_mae", {}),
    "qm9-energies": ("energy", "energy_mae", {"epochs": 10, "batch_size": 32}),
    "ethanol-dsm": ("dsm", "force_mae", {"temperature": 500.0, "batch_size": 32}),
    "toluene-dsm": ("dsm", "force_mae", {"temperature": 500.0, "batch_size": 32}),
    "ethanol-ssm": ("ssm", "force_mae", {"temperature": 500.0, "batch_size": 32}),
}


def case_data(case: str) -> tuple[str, str, str]:
    """(training file, split file, test file) of ``case``: 1,000 training and 100 validation frames of one
    trajectory and 500 test frames of another (QM9: 1,800 / 200 molecules and 500 others)."""
    if case == "qm9-energies":
        molecules = qm9_data(2500)
        structures = read_structures(molecules)
        train, test = CACHE / "qm9_2500_train.xyz", CACHE / "qm9_2500_test.xyz"
        if not test.exists():
            from boltzmatch.data import write_structures

            write_structures(train, structures[:2000])
            write_structures(test, structures[2000:])
        return str(train), str(make_split(2000, 1800, CACHE / "qm9_2500_split.npz")), str(test)
    molecule = case.split("-")[0]
    train = molecule_data(molecule, f"{molecule}500K_train1000", frames=1100, seed=1)
    test = molecule_data(molecule, f"{molecule}500K_test500", frames=500, seed=2)
    return str(train), str(make_split(1100, 1000, CACHE / "train_throughput_split.npz")), str(test)


def force_correlation(run: str, test: str) -> float:
    """Pearson r of the model's force components with the reference's over every test frame."""
    model = boltzmatch.load(run)
    packed = PackedStructures(read_structures(test), dtype=next(model.parameters()).dtype)
    _, forces = predict(model, packed)
    reference = packed.full.forces.double().numpy().ravel()
    return float(np.corrcoef(np.asarray(forces).ravel(), reference)[0, 1])


def _finished(run) -> dict | None:
    """Epochs and wall seconds of a finished run in ``run`` (its summary.txt written), else None: a killed
    benchmark resumes without training again what it finished."""
    summary = run / "summary.txt"
    if not summary.exists():
        return None
    epochs = len((run / "metrics.csv").read_text().strip().splitlines()) - 1
    seconds = next(float(line.split()[-1]) for line in summary.read_text().splitlines()
                   if line.startswith("wall time (s)"))
    return {"epochs": epochs, "seconds": seconds}


def train_one(case: str, basis: str, seed: int, epochs: int) -> dict:
    objective, _, options = CASES[case]
    train, split, test = case_data(case)
    options = {**SUPERVISED, "epochs": epochs, **options}
    run = CACHE / f"painn_radial_basis_{case}_{basis}_{seed}"
    result = _finished(run)
    if result is None and (run / "checkpoint.pt").exists():  # killed: go on from its checkpoint
        summary = boltzmatch.train(None, out=run, resume=True, progress=True)
        result = {"epochs": summary["epochs"], "seconds": summary["wall_seconds"]}
    elif result is None:
        summary = boltzmatch.train(train, out=run, model="painn", config={**SCHNET_CONFIG, "radial_basis": basis},
                                   objective=objective, split_file=split, seed=seed, progress=True, **options)
        result = {"epochs": summary["epochs"], "seconds": summary["wall_seconds"]}
    errors = boltzmatch.evaluate(run, test)
    result["energy_mae_meV"] = 1000 * errors["energy_mae"]
    if "force_mae" in errors:
        result["force_mae_meV_A"] = 1000 * errors["force_mae"]
    if objective in ("dsm", "ssm"):
        result["force_pearson_r"] = force_correlation(str(run), test)
    return result


def score(result: dict, case: str) -> float:
    return result["force_mae_meV_A"] if CASES[case][1] == "force_mae" else result["energy_mae_meV"]


def summarize(results: dict) -> str:
    rows = []
    for case, by_basis in results["cases"].items():
        unit = "force MAE (meV/Å)" if CASES[case][1] == "force_mae" else "energy MAE (meV)"
        means = {b: float(np.mean([score(r, case) for r in by_basis[b].values()])) for b in BASES if by_basis[b]}
        cells = [" / ".join(f"{score(r, case):.1f}" for r in by_basis[b].values()) for b in BASES]
        if CASES[case][0] in ("dsm", "ssm"):
            cells = [c + " (r " + " / ".join(f"{r['force_pearson_r']:.3f}" for r in by_basis[b].values()) + ")"
                     for c, b in zip(cells, BASES)]
        rows.append([case, CASES[case][0], unit, *cells, min(means, key=means.get) if len(means) == 2 else "–"])
    return write_results("painn_radial_basis", results, rows,
                         ["case", "objective", "measure", "Gaussians", "Bessel", "better"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=50, help="for the cases that name none (QM9: 10)")
    parser.add_argument("--summarize", action="store_true", help="rewrite the table from the JSON")
    args = parser.parse_args()
    previous = RESULTS / "painn_radial_basis.json"
    results = json.loads(previous.read_text()) if previous.exists() else {"cases": {}}
    results.pop("machine", None)
    if not args.summarize:
        results["config"], results["supervised"] = SCHNET_CONFIG, SUPERVISED
        for case in args.cases:
            results["cases"][case] = {b: {} for b in BASES}
            for basis in BASES:
                for seed in args.seeds:  # written after every run: a kill loses none
                    results["cases"][case][basis][str(seed)] = train_one(case, basis, seed, args.epochs)
                    summarize(results)
    print(summarize(results))


if __name__ == "__main__":
    main()
