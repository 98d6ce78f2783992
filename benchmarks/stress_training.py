"""Training on stress (``--stress-weight``): held-out stress, force and energy errors and the equation of state
of SchNet models trained on EMT crystals at several volumes, for a range of stress weights.

For each metal (Cu and Ni by default), ``generate --cell-scale`` makes the data: the 2×2×2 cubic fcc cell (32
atoms) at 600 K (Cu) or 800 K (Ni), with ASE's lattice constant scaled by 0.98, 1 and 1.02 (seed 0, ``--ps`` ps
each, a frame every 5 fs) to train on, and by 0.99 and 1.01 (seed 7) held out. The default SchNet trains
``--epochs`` epochs at each stress weight (0: forces and energies alone). Reported on the held-out frames:
force MAE (meV/Å), energy MAE (meV/atom), stress MAE (GPa); and the equation of state from 13 static cells
(Birch–Murnaghan, ASE's ``EquationOfState``): the lattice constant a₀ (Å) and bulk modulus B (GPa) against
EMT's own. Cu chose the default weight (10); Ni is the metal it was checked on.

Usage: python benchmarks/stress_training.py [--metals Cu Ni] [--weights 0 1 10 100] [--epochs 40] [--ps 0.5]
Writes benchmarks/results/stress_training.{json,md}; data and runs are cached under .cache/stress/.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from common import CACHE, write_results

from boltzmatch.analysis.evaluate import evaluate
from boltzmatch.data import generate
from boltzmatch.simulate import BoltzmatchCalculator
from boltzmatch.training import train
from boltzmatch.units import GPA_PER_EV_A3

TEMPERATURES = {"Cu": 600.0, "Ni": 800.0}


def equation_of_state(symbol: str, calculator) -> tuple[float, float]:
    """a₀ (Å) and B (GPa) from 13 static cubic cells within ±4 % of ASE's lattice constant."""
    a_ase = bulk(symbol, "fcc", cubic=True).cell[0, 0]
    volumes, energies = [], []
    for a in np.linspace(0.96, 1.04, 13) * a_ase:
        atoms = bulk(symbol, "fcc", a=a, cubic=True)
        atoms.calc = calculator
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, b = EquationOfState(volumes, energies).fit()
    return float(v0 ** (1 / 3)), float(b * GPA_PER_EV_A3)


def metal_data(symbol: str, ps: float) -> tuple[str, str]:
    """The training and held-out files of ``symbol`` (cached)."""
    folder = CACHE / "stress" / symbol
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, scales, seed in (("train", [0.98, 1.0, 1.02], 0), ("test", [0.99, 1.01], 7)):
        path = folder / f"{name}_{ps:g}ps.xyz"
        if not path.exists():
            generate(f"{symbol}-fcc-2x2x2", calculator="emt", temperature=TEMPERATURES[symbol], time=ps, interval=10,
                     equilibration=200, seed=seed, out=path, progress=False, cell_scales=scales)
        files.append(str(path))
    return files[0], files[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metals", nargs="+", default=["Cu", "Ni"], choices=sorted(TEMPERATURES))
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 10.0, 100.0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--ps", type=float, default=0.5, help="ps of MD per volume")
    args = parser.parse_args()
    results: dict = {"epochs": args.epochs, "ps_per_volume": args.ps, "metals": {}}
    rows = []
    for symbol in args.metals:
        train_file, test_file = metal_data(symbol, args.ps)
        a_ref, b_ref = equation_of_state(symbol, EMT())
        entry = {"emt": {"a0_A": a_ref, "B_GPa": b_ref}, "weights": {}}
        rows.append([symbol, "EMT", "–", "–", "–", f"{a_ref:.4f}", f"{b_ref:.0f}", "–"])
        for weight in args.weights:
            out = CACHE / "stress" / symbol / f"run_w{weight:g}_e{args.epochs}_{args.ps:g}ps"
            start = time.perf_counter()
            if not (out / "summary.txt").exists():
                train(train_file, out=out, stress_weight=weight, epochs=args.epochs, test_fraction=0.0,
                      progress=False)
            seconds = time.perf_counter() - start
            errors = evaluate(out, test_file)
            a0, b = equation_of_state(symbol, BoltzmatchCalculator(out))
            row = {"force_mae_meV_A": 1000 * errors["force_mae"],
                   "energy_mae_meV_atom": 1000 * errors["energy_mae_per_atom"],
                   "stress_mae_GPa": GPA_PER_EV_A3 * errors["stress_mae"], "a0_A": a0, "B_GPa": b,
                   "train_seconds": seconds}
            entry["weights"][f"{weight:g}"] = row
            rows.append([symbol, f"{weight:g}", f"{row['force_mae_meV_A']:.2f}", f"{row['energy_mae_meV_atom']:.2f}",
                         f"{row['stress_mae_GPa']:.3f}", f"{a0:.4f}", f"{b:.0f}", f"{seconds:.0f}"])
            print(rows[-1], flush=True)
        results["metals"][symbol] = entry
    print(write_results("stress_training", results, rows,
                        ["metal", "stress weight", "force MAE (meV/Å)", "energy MAE (meV/atom)", "stress MAE (GPa)",
                         "a₀ (Å)", "B (GPa)", "train (s)"]))


if __name__ == "__main__":
    main()
