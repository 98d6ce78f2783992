"""NPT (``simulate --pressure``, stochastic cell rescaling) against ASE's own barostat, and what training on
stress buys at temperature: the mean lattice constant of a crystal at 0 GPa.

Part ``lj``: a 32-atom Lennard-Jones argon crystal (ε 10.4 meV, σ 3.4 Å, cutoff 8.5 Å) whose torch model equals
ASE's ``LennardJones`` calculator (tests/helpers.py); ``simulate --pressure`` (16 replicas) against ASE's
``LangevinBAOAB`` barostat (hydrostatic, 8 seeds), at 40 K and 0 and 0.5 GPa. Same potential, two barostats:
the mean volumes must agree within their sampling errors.

Part ``metals``: EMT Cu at 600 K and Ni at 800 K (2×2×2 cubic cells), 0 GPa. ASE's ``LangevinBAOAB`` with EMT
itself gives the reference ⟨a⟩; the SchNet models of ``benchmarks/stress_training.py`` (trained with stress
weight 0 and 10, 40 epochs) run ``simulate --pressure 0``. Ni was never used to choose anything.

The sampling error of each mean is the standard deviation of per-replica (or per-seed) means over √count.

Part ``shape``: the shape of a crystal, not only its volume. hcp Lennard-Jones argon (48 atoms, orthorhombic cell)
started with c/a 1.58 at 40 K and 0 GPa: ``simulate --pressure-coupling anisotropic`` (each axis alone) against
ASE's ``LangevinBAOAB`` with a fully flexible cell (``hydrostatic=False``, 8 seeds); the isotropic coupling keeps the
c/a it started with, the other two find the potential's.

Part ``refine``: where a model's labels come from. EMT Ni at 800 K, a SchNet trained (40 epochs) on one NVT volume
(the built 3.52 Å cell, 1 ps), with its stress labels (weight 10) or on a copy without them: two rounds of ``refine``
(32 EMT labels a round, with stress, 20 epochs), its MD at fixed volume or at 0 GPa (``--pressure 0``), then each
model's ⟨a⟩ in NPT at 0 GPa against EMT's, and its force and stress MAE on held-out frames: EMT's own NPT at 0 GPa
(ASE's ``LangevinBAOAB``, flexible cell, 2 ps, seed 12), which no model saw.

Part ``tau``: the barostat's relaxation time (``--barostat-tau``) on the Cu model trained with stress: the
volume's spread must not depend on it, while its correlation time (the cost of a mean) does.

Usage: python benchmarks/npt.py [--part lj metals shape refine tau] [--ps 10]
Writes benchmarks/results/npt.{json,md}; a part run alone keeps the other parts' stored results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from common import CACHE, RESULTS, write_results

import boltzmatch
from boltzmatch.simulate.barostat import DEFAULT_BAROSTAT_TAU
from boltzmatch.simulate.output import read_thermo
from boltzmatch.units import GPA_PER_EV_A3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import LennardJones  # noqa: E402  (the torch model the tests check against ASE's)

METALS = {"Cu": 600.0, "Ni": 800.0}


def ase_volumes(atoms, calculator, *, temperature: float, pressure: float, ps: float, timestep: float,
                seeds: int = 8, hydrostatic: bool = True, measure=None) -> list[np.ndarray]:
    """Per seed, the volumes (Å³; or ``measure(atoms)``) of ASE's LangevinBAOAB NPT after a fifth of ``ps`` to
    equilibrate; ``hydrostatic=False``: a fully flexible cell."""
    measure = measure or (lambda a: a.get_volume())
    out = []
    for seed in range(seeds):
        a = atoms.copy()
        a.calc = calculator
        MaxwellBoltzmannDistribution(a, temperature_K=temperature, rng=np.random.default_rng(seed))
        dyn = LangevinBAOAB(a, timestep * units.fs, temperature_K=temperature, externalstress=-pressure * units.GPa,
                            hydrostatic=hydrostatic, T_tau=100 * units.fs, P_tau=2000 * units.fs, rng=seed)
        steps = int(ps * 1000 / timestep)
        dyn.run(steps // 5)
        volumes = []
        for _ in range(steps // 20):
            dyn.run(20)
            volumes.append(measure(a))
        out.append(np.asarray(volumes))
    return out


def our_volumes(model, atoms, *, temperature: float, pressure: float, ps: float, timestep: float,
                compressibility: float, replicas: int = 16, barostat_tau: float = DEFAULT_BAROSTAT_TAU,
                coupling: str = "isotropic", measure=None) -> tuple[list[np.ndarray], float]:
    """Per replica, the volumes (Å³; or ``measure(thermo columns)``) of ``simulate --pressure`` after a fifth of
    ``ps``; and its wall seconds."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        boltzmatch.simulate(model, [atoms], out=Path(folder) / "sim", replicas=replicas, time=ps, timestep=timestep,
                            temperature=temperature, pressure=pressure, compressibility=compressibility,
                            barostat_tau=barostat_tau, pressure_coupling=coupling, interval=20, check_interval=20,
                            criterion="bond", write_trajectories=False, progress=False, max_deviation=2.0)
        seconds = time.perf_counter() - start
        thermo = read_thermo(Path(folder) / "sim" / "thermo.csv")
    values = thermo["volume_A3"] if measure is None else measure(thermo)
    keep = thermo["time_ps"] >= ps / 5
    return [values[keep & (thermo["replica"] == r)] for r in range(replicas)], seconds


def correlation_time(volumes: list[np.ndarray], spacing_ps: float) -> float:
    """The integrated autocorrelation time (ps) of the volume, averaged over the replicas: the sum of its
    normalised autocorrelation up to the first lag where it turns negative, times 2, minus one sample."""
    times = []
    for v in volumes:
        x = v - v.mean()
        acf = np.correlate(x, x, mode="full")[len(x) - 1:] / (x @ x)
        cut = int(np.argmax(acf < 0)) or len(acf)
        times.append((2.0 * acf[:cut].sum() - 1.0) * spacing_ps)
    return float(np.mean(times))


def lattice(volumes: list[np.ndarray], atoms_per_cubic_cell: int = 4, atoms: int = 32) -> tuple[float, float]:
    """⟨a⟩ (Å) of the cubic cell from the mean volume, and its sampling error (Å)."""
    means = np.array([v.mean() for v in volumes])
    cells = atoms / atoms_per_cubic_cell
    a = (means.mean() / cells) ** (1 / 3)
    error = means.std(ddof=1) / np.sqrt(len(means)) if len(means) > 1 else float("nan")
    return float(a), float(a * error / (3 * means.mean()))


def mean_and_error(values: list[np.ndarray]) -> tuple[float, float]:
    """The mean over replicas (or seeds) of their means, and its sampling error."""
    means = np.array([v.mean() for v in values])
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(len(means)))


PARTS = ("lj", "metals", "shape", "refine", "tau")
HEADER = ["system", "model", "⟨a⟩ (Å) or c/a, ASE barostat", "simulate --pressure", "difference (%)"]


def row(system: str, model: str, ref: tuple[float, float] | None, a: tuple[float, float], extra: str = "") -> list:
    """A table row: ⟨a⟩ ± its error from both barostats and their difference (%)."""
    return [system, model, "–" if ref is None else f"{ref[0]:.4f} ± {ref[1]:.4f}", f"{a[0]:.4f} ± {a[1]:.4f}{extra}",
            "–" if ref is None else f"{(a[0] - ref[0]) / ref[0] * 100:+.2f}"]


def lennard_jones_part(ps: float) -> dict:
    """Same potential, two barostats: torch LJ under ``simulate --pressure`` against ASE's LJ under LangevinBAOAB."""
    argon = bulk("Ar", "fcc", a=5.30, cubic=True).repeat(2)
    part: dict = {"rows": []}
    for pressure in (0.0, 0.5):
        ref = lattice(ase_volumes(argon, AseLennardJones(epsilon=0.0104, sigma=3.4, rc=8.5, smooth=False),
                                  temperature=40.0, pressure=pressure, ps=ps, timestep=5.0))
        ours, seconds = our_volumes(LennardJones(), argon, temperature=40.0, pressure=pressure, ps=ps, timestep=5.0,
                                    compressibility=0.5)
        a = lattice(ours)
        part[f"{pressure:g}GPa"] = {"ase_a_A": ref[0], "ase_error_A": ref[1], "a_A": a[0], "error_A": a[1],
                                    "seconds": seconds}
        part["rows"].append(row(f"LJ argon 40 K, {pressure:g} GPa", "torch LJ = ASE's", ref, a))
        print(part["rows"][-1], flush=True)
    return part


def metals_part(ps: float) -> dict:
    """EMT's own ⟨a⟩ at 0 GPa (ASE's barostat) against SchNet models trained with and without stress."""
    part: dict = {"rows": []}
    for symbol, temperature in METALS.items():
        crystal = bulk(symbol, "fcc", cubic=True).repeat(2)
        ref = lattice(ase_volumes(crystal, EMT(), temperature=temperature, pressure=0.0, ps=ps, timestep=2.0))
        entry = {"emt_a_A": ref[0], "emt_error_A": ref[1], "models": {}}
        for weight in ("0", "10"):
            run = CACHE / "stress" / symbol / f"run_w{weight}_e40_0.5ps"
            if not (run / "model.pt").exists():
                sys.exit(f"{run}: missing; run benchmarks/stress_training.py first")
            ours, seconds = our_volumes(run, crystal, temperature=temperature, pressure=0.0, ps=ps, timestep=2.0,
                                        compressibility=0.01, replicas=8)
            a = lattice(ours)
            entry["models"][weight] = {"a_A": a[0], "error_A": a[1], "seconds": seconds}
            part["rows"].append(row(f"EMT {symbol} {temperature:g} K, 0 GPa", f"SchNet, stress weight {weight}",
                                    ref, a))
            print(part["rows"][-1], flush=True)
        part[symbol] = entry
    return part


#: hcp's c/a from its orthorhombic cell (48 atoms: 3 × 2 × 2 cells of a, √3·a, c)
HCP_REPEAT = (3, 2, 2)


def c_over_a(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """c/a of hcp in the orthorhombic cell of :data:`HCP_REPEAT` from its three lengths (Å)."""
    nx, ny, nz = HCP_REPEAT
    return (z / nz) / (0.5 * (x / nx + y / (np.sqrt(3.0) * ny)))


def shape_part(ps: float) -> dict:
    """hcp argon's c/a at 40 K from a start at 1.58: ASE's fully flexible cell against each coupling."""
    crystal = bulk("Ar", "hcp", a=3.75, c=3.75 * 1.58, orthorhombic=True).repeat(HCP_REPEAT)
    ref = mean_and_error(ase_volumes(crystal, AseLennardJones(epsilon=0.0104, sigma=3.4, rc=8.5, smooth=False),
                                     temperature=40.0, pressure=0.0, ps=ps, timestep=5.0, hydrostatic=False,
                                     measure=lambda a: c_over_a(*a.cell.lengths())))
    part: dict = {"rows": [], "ase_c_over_a": ref[0], "ase_error": ref[1]}
    for coupling in ("isotropic", "anisotropic"):
        ours, seconds = our_volumes(LennardJones(), crystal, temperature=40.0, pressure=0.0, ps=ps, timestep=5.0,
                                    compressibility=0.5, coupling=coupling,
                                    measure=lambda th: c_over_a(th["a_A"], th["b_A"], th["c_A"]))
        value = mean_and_error(ours)
        part[coupling] = {"c_over_a": value[0], "error": value[1], "seconds": seconds}
        part["rows"].append(["LJ argon hcp 40 K, 0 GPa, c/a from 1.58", f"torch LJ, --pressure-coupling {coupling}",
                             f"{ref[0]:.4f} ± {ref[1]:.4f}", f"{value[0]:.4f} ± {value[1]:.4f}",
                             f"{(value[0] - ref[0]) / ref[0] * 100:+.2f}"])
        print(part["rows"][-1], flush=True)
    return part


def refine_part(ps: float) -> dict:
    """Models trained at one volume, refined by labels from their NVT or their NPT MD: ⟨a⟩ at 0 GPa against EMT's.
    Two starts: trained with the stress labels (weight 10), and trained on a copy of the data without them."""
    from boltzmatch.data import read_structures, write_structures

    folder = CACHE / "npt_refine"
    data = folder / "ni_nvt_1ps.xyz"
    if not data.exists():
        folder.mkdir(parents=True, exist_ok=True)
        boltzmatch.generate("Ni-fcc-2x2x2", calculator="emt", temperature=800.0, time=1.0, interval=10,
                            equilibration=200, out=data, progress=False)
    bare = folder / "ni_nvt_1ps_no_stress.xyz"
    if not bare.exists():
        frames = read_structures(data)
        for frame in frames:
            frame.calc.results.pop("stress", None)
        write_structures(bare, frames)
    held_out = folder / "ni_npt_0GPa_seed12.xyz"  # frames no model saw: EMT's own NPT at 0 GPa, its own seed
    if not held_out.exists():
        boltzmatch.generate("Ni-fcc-2x2x2", calculator="emt", temperature=800.0, time=2.0, interval=40,
                            equilibration=200, pressure=0.0, seed=12, out=held_out, progress=False)
    crystal = bulk("Ni", "fcc", cubic=True).repeat(2)
    emt = json.loads((RESULTS / "npt.json").read_text())["metals"]["Ni"]
    ref = (emt["emt_a_A"], emt["emt_error_A"])
    part: dict = {"rows": [], "emt_a_A": ref[0]}
    for start_name, train_data, weight, suffix in (("with stress labels", data, 10.0, ""),
                                                   ("without stress labels", bare, 0.0, "_no_stress")):
        start = folder / f"schnet_one_volume{suffix}"
        if not (start / "summary.txt").exists():
            boltzmatch.train(train_data, out=start, model="schnet", epochs=40, stress_weight=weight, seed=0,
                             progress=False)
        models = {f"trained at one volume {start_name}": start}
        for label, pressure in (("refined by NVT MD", None), ("refined by --pressure 0 MD", 0.0)):
            out = folder / (("refine_npt" if pressure is not None else "refine_nvt") + suffix)
            began, timing = time.perf_counter(), out.with_name(out.name + "_seconds.txt")
            summary = boltzmatch.refine(start, data=train_data, out=out, calculator="emt", temperature=800.0,
                                        rounds=2, replicas=8, time=2.0, timestep=2.0, label_budget=32, epochs=20,
                                        seed=0, pressure=pressure, progress=False)
            if not timing.exists():  # the time of the run that made it, not of reading it back
                timing.write_text(f"{time.perf_counter() - began:.1f}\n")
            models[f"{start_name}, {label}"] = out / "round_01" / "model"
            part[f"{start_name}, {label}"] = {"refine_seconds": float(timing.read_text()), "rows": summary["rows"]}
        for label, run in models.items():
            ours, seconds = our_volumes(run, crystal, temperature=800.0, pressure=0.0, ps=ps, timestep=2.0,
                                        compressibility=0.01, replicas=8)
            a = lattice(ours)
            errors = boltzmatch.evaluate(run, held_out, device="cpu")
            force, stress = 1000 * errors["force_mae"], GPA_PER_EV_A3 * errors["stress_mae"]
            part.setdefault(label, {}).update({"a_A": a[0], "error_A": a[1], "npt_seconds": seconds,
                                               "held_out_force_mae_meV_A": force, "held_out_stress_mae_GPa": stress})
            part["rows"].append(row("EMT Ni 800 K, 0 GPa", f"SchNet, {label}", ref, a,
                                    f" (held out: F {force:.1f} meV/Å, σ {stress:.3f} GPa)"))
            print(part["rows"][-1], flush=True)
    return part


def tau_part(ps: float) -> dict:
    """The barostat's relaxation time on Cu: the volume's correlation time and spread against its mean."""
    crystal = bulk("Cu", "fcc", cubic=True).repeat(2)
    run = CACHE / "stress" / "Cu" / "run_w10_e40_0.5ps"
    part: dict = {"rows": []}
    for tau in (50.0, 100.0, 250.0, 1000.0):
        ours, seconds = our_volumes(run, crystal, temperature=600.0, pressure=0.0, ps=ps, timestep=2.0,
                                    compressibility=0.01, replicas=8, barostat_tau=tau)
        a, correlation = lattice(ours), correlation_time(ours, 0.04)
        spread = float(np.concatenate(ours).std())
        part[f"{tau:g}"] = {"a_A": a[0], "error_A": a[1], "volume_correlation_ps": correlation,
                            "volume_sd_A3": spread, "seconds": seconds}
        part["rows"].append(row(f"EMT Cu 600 K, 0 GPa, --barostat-tau {tau:g} fs", "SchNet, stress weight 10", None,
                                a, f" (V: sd {spread:.1f} Å³, correlated {correlation:.2f} ps)"))
        print(part["rows"][-1], flush=True)
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--ps", type=float, default=10.0, help="ps per replica or seed")
    args = parser.parse_args()
    stored = RESULTS / "npt.json"  # a part run alone replaces its own results and keeps the others'
    results = json.loads(stored.read_text()) if stored.exists() else {}
    results.pop("machine", None)
    for name, work in (("lj", lennard_jones_part), ("metals", metals_part), ("shape", shape_part),
                       ("refine", refine_part), ("tau", tau_part)):
        if name in args.part:
            results[name] = {"ps": args.ps, **work(args.ps)}
    rows = [r for name in PARTS if name in results for r in results[name]["rows"]]
    print(write_results("npt", results, rows, HEADER))


if __name__ == "__main__":
    main()
