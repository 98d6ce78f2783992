"""Bring your own model (issue 16): MACE and SchNetPack models fine-tuned, simulated and judged.

Parts
-----
``mace``: MACE trained by its own ``mace_run_train`` on 1,000 GFN2-xTB malonaldehyde frames at
500 K (energies and forces; MACE's defaults but 32 channels, L_max 1, float32, ``--mace-epochs``
epochs), then Fisher-fine-tuned in boltzmatch; MACE trained by boltzmatch from positions alone
(dsm); boltzmatch's SchNet and PaiNN trained on the same frames. One ``compare`` report on a
separately seeded 1,000-frame trajectory: force MAE, h(r), and batched MD at 500 K (16 replicas,
median time to collapse).

``md``: the MACE model of ``mace`` (trained first if absent) in boltzmatch's batched MD, 64
replicas, against MACE's own ASE calculator driving ASE's Langevin, one Atoms per molecule and 64
molecules packed 20 Å apart in one Atoms (ASE's way to batch); boltzmatch also with MACE's own code
instead of its CPU MACE code (the same sums reordered), which splits the gain into batching and code:
replica-steps per second, and the largest force difference on 64 test frames (float32 as trained,
and float64).

``schnetpack``: in SchNetPack 2.1.1's own environment (torch 2.4.1; it cannot import with the
project's torch), a SchNetPack SchNet file: energies and forces of the adapter against
``SpkCalculator``, and batched MD against ``SpkCalculator`` + ASE Langevin, via
``peers/schnetpack_adapter.py``.

``nequip``: in NequIP 0.19's own environment (torch 2.13, e3nn 0.6: MACE pins e3nn 0.4.4), the
NequIP adapter's tests (``NequIPCalculator`` equality, the physics suite), and real files via
``peers/nequip_adapter.py``: a NequIP trained by ``nequip-train`` on EMT copper and packaged by
``nequip-package``, compared with ``NequIPCalculator`` and Fisher-fine-tuned in boltzmatch.

Usage: python benchmarks/external_models.py [--part mace md schnetpack nequip] [--mace-epochs 10] [--minutes 4]
Writes benchmarks/results/external_models.{json,md} and the compare report under
benchmarks/results/external_models/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import (
    CACHE,
    PEER_PYTHON,
    RESULTS,
    ase_langevin_rate,
    ase_packed_langevin_rate,
    cell,
    install_schnetpack_peer,
    molecule_data,
    spread,
    write_results,
)

import boltzmatch
from boltzmatch.analysis.compare import compare
from boltzmatch.data import read_structures

WORK = CACHE / "external_models"
REPORT = RESULTS / "external_models"
MACE_FILE = WORK / "mace_run_train" / "malonaldehyde.model"
MACE_ARGS = ["--model", "MACE", "--num_channels", "32", "--max_L", "1", "--r_max", "5.0", "--batch_size", "10",
             "--E0s", "average", "--valid_fraction", "0.05", "--default_dtype", "float32", "--device", "cpu",
             "--seed", "0"]


def data() -> tuple[Path, Path]:
    train = molecule_data("malonaldehyde", "malonaldehyde500K_train1000", frames=1000, seed=1)
    test = molecule_data("malonaldehyde", "malonaldehyde500K_test1000", frames=1000, seed=2)
    return train, test


def mace_extxyz(path: Path, out: Path) -> Path:
    """The frames with energies and forces under REF_energy/REF_forces, the keys MACE's docs ask for
    (plain ``energy``/``forces`` collide with ASE's calculator results)."""
    from ase.io import write

    frames = read_structures(path)
    for atoms in frames:
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
    write(out, frames)
    return out


def train_mace(train: Path, epochs: int) -> tuple[Path, float]:
    """MACE's own training on ``train``; returns the model file and its wall time (s)."""
    if MACE_FILE.exists():
        return MACE_FILE, json.loads((MACE_FILE.parent / "wall.json").read_text())["seconds"]
    work = MACE_FILE.parent
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    xyz = mace_extxyz(train, work / "train.xyz")
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("mace_run_train")), "--name", "malonaldehyde",
                    "--train_file", str(xyz), "--energy_key", "REF_energy", "--forces_key", "REF_forces",
                    "--max_num_epochs", str(epochs), "--work_dir", str(work), *MACE_ARGS], check=True)
    seconds = time.perf_counter() - start
    (work / "wall.json").write_text(json.dumps({"seconds": seconds, "epochs": epochs}))
    return MACE_FILE, seconds


def part_mace(args, results: dict) -> None:
    train, test = data()
    mace_file, mace_seconds = train_mace(train, args.mace_epochs)
    minutes = args.minutes
    runs = WORK / "runs"
    if args.retrain or not (runs / "painn" / "model.pt").exists():
        shutil.rmtree(runs, ignore_errors=True)
        common = dict(epochs=100000, max_minutes=minutes, progress=True, seed=0)
        boltzmatch.finetune(mace_file, data=train, out=runs / "mace-fisher", objective="fisher", temperature=500.0,
                            lr=3e-4, batch_size=16, **common)
        boltzmatch.train(train, out=runs / "mace-dsm", model="mace",
                         config={"hidden_irreps": "32x0e + 32x1o", "r_max": 5.0}, objective="dsm", temperature=500.0,
                         lr=3e-3, batch_size=16, **common)
        for name in ("schnet", "painn"):
            boltzmatch.train(train, out=runs / name, model=name, lr=1e-3, batch_size=16, **common)
    names = ["MACE (mace_run_train)", "MACE + Fisher (boltzmatch)", "MACE dsm, positions only", "SchNet", "PaiNN"]
    compared = compare(
        [mace_file, runs / "mace-fisher", runs / "mace-dsm", runs / "schnet", runs / "painn"], test, out=REPORT,
        names=names, simulate=True, start=test, temperature=500.0, replicas=16, time=args.md_ps, progress=True,
    )
    results["mace"] = {"mace_run_train_seconds": mace_seconds, "mace_epochs": args.mace_epochs,
                       "boltzmatch_minutes_per_run": minutes, "md_ps": args.md_ps, "report": str(compared["report"]),
                       "models": {n: {k: v for k, v in compared["models"][n].items() if not isinstance(v, list | dict)}
                                  for n in names}}


def part_md(args, results: dict) -> None:
    from mace.calculators import MACECalculator

    from boltzmatch.data import AtomsBatch
    from boltzmatch.models import energy_and_forces

    train, test = data()
    mace_file, _ = train_mace(train, args.mace_epochs)
    frames = read_structures(test)
    # forces: boltzmatch's adapter against MACE's calculator, same dtype
    differences = {}
    for dtype_name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        model = boltzmatch.models.build_model({"name": "mace", "file": str(mace_file), "dtype": dtype_name})
        calculator = MACECalculator(model_paths=str(mace_file), device="cpu", default_dtype=dtype_name)
        worst = 0.0
        for atoms in frames[:64]:
            _, forces = energy_and_forces(model, AtomsBatch.from_atoms([atoms], dtype=dtype))
            atoms = atoms.copy()
            atoms.calc = calculator
            worst = max(worst, float(np.abs(forces.numpy() - atoms.get_forces()).max()))
        differences[dtype_name] = worst

    # boltzmatch's batched MD, 64 replicas, against MACE's calculator under ASE's Langevin two ways: one
    # molecule per Atoms (ASE's way for separate replicas) and 64 molecules packed 20 Å apart in one Atoms
    # (one calculator call per step: ASE's way to batch). boltzmatch runs twice: with its CPU MACE code (the
    # same sums reordered, mace_contraction/mace_edge_product) and with MACE's own code, which splits the
    # gain into batching and the MACE code. Alternated round by round in this process.
    from boltzmatch.models.external import mace_contraction, mace_edge_product
    from boltzmatch.runs import run_dir as rd

    calculator = MACECalculator(model_paths=str(mace_file), device="cpu", default_dtype="float32")
    accelerated, original = rd.load(mace_file), rd.load(mace_file)
    mace_contraction.restore(original.module)
    mace_edge_product.restore(original.module)
    steps = args.md_steps
    ase_replicas, ase_steps = 4, max(20, steps // 4)
    rates: dict[str, list[float]] = {"ours": [], "ours_mace_code": [], "ase_packed": [], "ase_single": []}

    def batched(key: str, model, steps: int, seed: int) -> float:
        summary = boltzmatch.simulate(model, test, out=WORK / f"md64_{key}", replicas=64, time=steps * 0.5 / 1000,
                                      timestep=0.5, temperature=500.0, write_trajectories=False, progress=False,
                                      max_deviation=1e9, max_temperature=1e9, interval=steps, seed=seed)
        return summary["replica_steps_per_second"]

    for key, model in (("ours", accelerated), ("ours_mace_code", original)):  # warm-up, not timed
        batched(key, model, 10, 0)
    for round_ in range(args.md_rounds):
        for key, model in (("ours", accelerated), ("ours_mace_code", original)):
            rates[key].append(batched(key, model, steps, round_))
        rates["ase_packed"].append(ase_packed_langevin_rate(frames, calculator, replicas=64, steps=ase_steps))
        rates["ase_single"].append(ase_langevin_rate(frames[round_ * ase_replicas:], calculator,
                                                     replicas=ase_replicas, steps=ase_steps))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()) + " replica-steps/s")

    def ratio(a: str, b: str) -> dict:
        return spread([x / y for x, y in zip(rates[a], rates[b], strict=True)])

    results["md"] = {"boltzmatch_replica_steps_per_s": spread(rates["ours"]),
                     "boltzmatch_with_mace_code_replica_steps_per_s": spread(rates["ours_mace_code"]),
                     "ase_packed_replica_steps_per_s": spread(rates["ase_packed"]),
                     "ase_mace_calculator_replica_steps_per_s": spread(rates["ase_single"]),
                     "ratio": ratio("ours", "ase_single"), "ratio_vs_packed": ratio("ours", "ase_packed"),
                     "batching_vs_packed": ratio("ours_mace_code", "ase_packed"),
                     "mace_code": ratio("ours", "ours_mace_code"),
                     "replicas": 64, "steps": steps, "rounds": args.md_rounds, "threads": torch.get_num_threads(),
                     "ase_measured_over": f"one Atoms per molecule: {ase_replicas} replicas x {ase_steps} steps per "
                                          f"round; packed: 64 molecules 20 Å apart x {ase_steps} steps",
                     "max_force_difference_eV_A": differences}


def part_schnetpack(args, results: dict) -> None:
    install_schnetpack_peer()
    subprocess.run([str(PEER_PYTHON.with_name("pip")), "install", "-q", "vesin", "pytest"], check=True)
    _, test = data()
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONPATH": f"{root / 'src'}:{root / 'tests'}:{root / 'benchmarks'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(PEER_PYTHON), str(Path(__file__).parent / "peers" / "schnetpack_adapter.py"),
                             "--frames", str(test), "--work", str(WORK / "schnetpack"), "--steps", str(args.md_steps)],
                            check=True, capture_output=True, text=True, env=env)
    peer = json.loads(result.stdout.strip().splitlines()[-1])
    tests = subprocess.run([str(PEER_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/unit/models/test_external_schnetpack.py", "tests/unit/models/test_model_physics.py",
                            "-k", "schnetpack"], cwd=root, env=env, capture_output=True, text=True)
    peer["adapter_tests"] = tests.stdout.strip().splitlines()[-1]
    results["schnetpack"] = peer


NEQUIP_PYTHON = PEER_PYTHON.parents[2] / "nequip" / "bin" / "python"


def part_nequip(args, results: dict) -> None:
    """NequIP 0.19 beside torch 2.13 in its own environment (its e3nn >= 0.6 excludes MACE's 0.4.4):
    the adapter's tests there (NequIPCalculator equality, the physics suite)."""
    if not NEQUIP_PYTHON.exists():
        venv = NEQUIP_PYTHON.parents[1]
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "torch==2.13.0"], check=True)
    root = Path(__file__).resolve().parents[1]
    subprocess.run([str(NEQUIP_PYTHON.with_name("pip")), "install", "-q", "-e", f"{root}[test]", "nequip==0.19.1"],
                   check=True)
    env = {"PYTHONPATH": f"{root / 'tests'}", "PATH": "/usr/bin:/bin"}
    tests = subprocess.run([str(NEQUIP_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/unit/models/test_external_nequip.py", "tests/unit/models/test_model_physics.py",
                            "-k", "nequip"], cwd=root, env=env, capture_output=True, text=True)
    peer = subprocess.run([str(NEQUIP_PYTHON), str(Path(__file__).parent / "peers" / "nequip_adapter.py"),
                           "--work", str(WORK / "nequip")], check=True, capture_output=True, text=True, env=env)
    results["nequip"] = {**json.loads(peer.stdout.strip().splitlines()[-1]),
                         "adapter_tests": tests.stdout.strip().splitlines()[-1], "nequip": "0.19.1", "torch": "2.13.0"}


def table_rows(results: dict) -> list[list]:
    """One table from whatever parts have results (a part run alone keeps the others' rows)."""
    rows = []
    if "md" in results:
        md = results["md"]
        rows.append(["MACE MD, 64 replicas", "boltzmatch batched MD vs ASE Langevin + MACECalculator, one "
                     "Atoms per molecule", f"{cell(md['boltzmatch_replica_steps_per_s'], 0)} vs "
                     f"{cell(md['ase_mace_calculator_replica_steps_per_s'], 0)} replica-steps/s",
                     f"{cell(md['ratio'])}x, median of {md['rounds']} rounds (goal >= 10x)"])
        if "ratio_vs_packed" in md:
            rows.append(["MACE MD, 64 replicas", "the same vs ASE + MACECalculator on 64 molecules packed 20 Å "
                         "apart in one Atoms", f"{cell(md['boltzmatch_replica_steps_per_s'], 0)} vs "
                         f"{cell(md['ase_packed_replica_steps_per_s'], 0)} replica-steps/s",
                         f"{cell(md['ratio_vs_packed'])}x"])
            rows.append(["  of which batching", "boltzmatch MD with MACE's own code vs packed ASE",
                         f"{cell(md['boltzmatch_with_mace_code_replica_steps_per_s'], 0)} vs "
                         f"{cell(md['ase_packed_replica_steps_per_s'], 0)}", f"{cell(md['batching_vs_packed'])}x"])
            rows.append(["  and the CPU MACE code", "the same sums reordered (mace_contraction, mace_edge_product) "
                         "vs MACE's", f"{cell(md['boltzmatch_replica_steps_per_s'], 0)} vs "
                         f"{cell(md['boltzmatch_with_mace_code_replica_steps_per_s'], 0)}",
                         f"{cell(md['mace_code'])}x"])
        d = md["max_force_difference_eV_A"]
        rows.append(["MACE forces vs MACECalculator", "max |dF| on 64 test frames",
                     f"float32 {d['float32']:.1e} eV/Å", f"float64 {d['float64']:.1e} eV/Å (goal <= 1e-5)"])
    if "schnetpack" in results:
        peer = results["schnetpack"]
        rows.append(["SchNetPack file", "energies / forces vs SpkCalculator (64 frames, float64)",
                     f"{peer['max_energy_difference_eV']:.1e} eV", f"{peer['max_force_difference_eV_A']:.1e} eV/Å"])
        rows.append(["SchNetPack MD, 64 replicas", "boltzmatch batched MD vs ASE Langevin + SpkCalculator",
                     f"{peer['boltzmatch_replica_steps_per_s']:.0f} vs {peer['ase_replica_steps_per_s']:.0f}"
                     " replica-steps/s",
                     f"{peer['boltzmatch_replica_steps_per_s'] / peer['ase_replica_steps_per_s']:.1f}x"])
        rows.append(["SchNetPack adapter tests", "in SchNetPack's env: physics suite, calculator equality",
                     peer["adapter_tests"], ""])
    if "nequip" in results:
        nequip = results["nequip"]
        rows.append(["NequIP adapter tests", "in NequIP's env: NequIPCalculator equality (1e-8), physics suite",
                     nequip["adapter_tests"], ""])
        calc = nequip["calculator"]["package"]
        rows.append(["NequIP package (nequip-train + nequip-package, EMT Cu)", "energies / forces vs NequIPCalculator",
                     f"{calc['max_energy_difference_eV']:.1e} eV", f"{calc['max_force_difference_eV_A']:.1e} eV/Å"])
        rows.append(["NequIP package, Fisher fine-tune in boltzmatch", "force MAE, separately seeded EMT traj.",
                     f"{nequip['force_mae_before_meV_A']:.0f} -> {nequip['force_mae_after_fisher_meV_A']:.0f} meV/Å",
                     f"{nequip['finetune_epochs']} epochs at 300 K"])
    if "mace" in results:
        mace = results["mace"]
        for name, r in mace["models"].items():
            rows.append(["malonaldehyde, test traj. (seed 2)", name, f"force MAE {r['force_mae_meV_A']:.1f} meV/Å",
                         f"median collapse {r.get('median_time_to_collapse_ps', float('nan')):.2f} ps "
                         f"({r.get('collapsed_fraction', '?')} in {mace['md_ps']:g} ps, 500 K)"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=["mace", "md", "schnetpack", "nequip"],
                        default=["md", "schnetpack", "nequip", "mace"])
    parser.add_argument("--mace-epochs", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=4.0, help="wall-time budget of each boltzmatch training run")
    parser.add_argument("--md-ps", type=float, default=3.0, help="ps per replica in the compare report's MD")
    parser.add_argument("--retrain", action="store_true", help="train the mace part's runs again, not reuse them")
    parser.add_argument("--md-steps", type=int, default=200, help="steps timed for MD throughput")
    parser.add_argument("--md-rounds", type=int, default=5, help="round-robin rounds of the MD throughput")
    args = parser.parse_args()
    path = RESULTS / "external_models.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("machine", None)
    for part in args.part:
        {"mace": part_mace, "md": part_md, "schnetpack": part_schnetpack, "nequip": part_nequip}[part](args, results)
        write_results("external_models", results, table_rows(results), ["part", "what", "measured", "against"])
    print(write_results("external_models", results, table_rows(results), ["part", "what", "measured", "against"]))


if __name__ == "__main__":
    main()
