"""MD throughput: boltzmatch's batched Langevin MD against ASE (one replica at a time) and SchNetPack.

Issue 5's goals, all with one SchNet (64 features, 3 interactions, 20 Gaussians, 5 Å cutoff) on
GFN2-xTB ethanol, measured in one run on the same machine:
- replica-steps per second of ``boltzmatch.simulate`` at 1, 8, 64 and 256 replicas;
- ≥ 20× ASE's Langevin driving the same model through ``BoltzmatchCalculator`` one replica at a
  time, at 64 replicas;
- ≥ 1.5× SchNetPack 2.1.1's own MD (System + VelocityVerlet + LangevinThermostat, replicas batched
  by SchNetPack) with the *same weights* ported into ``schnetpack.representation.SchNet``; the peer
  runs in its own virtual environment (``benchmarks/.peers/schnetpack``, torch 2.4.1), made by
  ``--install-peer`` or by hand: ``python3.11 -m venv benchmarks/.peers/schnetpack &&
  benchmarks/.peers/schnetpack/bin/pip install torch==2.4.1 schnetpack==2.1.1``;
- integrator and bookkeeping overhead ≤ 15 % of the model's forward-plus-backward time at 64 replicas.

The model is a SchNet trained for a few minutes on cached xTB data (stable MD, so the neighbour
count stays that of a molecule); weights, not accuracy, matter here.

Usage: python benchmarks/md_throughput.py [--steps 300] [--replicas 1 8 64 256] [--no-peer]
Writes benchmarks/results/md_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import (
    CACHE,
    PEER_PYTHON,
    SCHNET_CONFIG,
    ethanol_data,
    install_schnetpack_peer,
    trained_schnet,
    write_results,
)

import boltzmatch
from boltzmatch.data import read_structures
from boltzmatch.simulate import BoltzmatchCalculator, simulate
from boltzmatch.simulate.runner import ModelForces

CONFIG = SCHNET_CONFIG
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "schnetpack_md.py"
TEMPERATURE, TIMESTEP, FRICTION = 500.0, 0.5, 0.01  # K, fs, 1/fs


def batched_rate(model, frames, replicas: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        s = simulate(model, frames, out=tmp, replicas=replicas, time=steps * TIMESTEP / 1000, timestep=TIMESTEP,
                     friction=FRICTION, temperature=TEMPERATURE, interval=10**9, write_trajectories=False,
                     progress=False, seed=0)
    return {"replica_steps_per_second": s["replica_steps_per_second"], "collapsed": s["n_collapsed"]}


def model_rate(model, frames, replicas: int, repeats: int) -> float:
    """Seconds per forward+backward of the model alone for ``replicas`` structures."""
    batch = boltzmatch.AtomsBatch.from_atoms([frames[i % len(frames)] for i in range(replicas)], dtype=torch.float64)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    for _ in range(5):
        forces(batch.positions)
    start = time.perf_counter()
    for _ in range(repeats):
        forces(batch.positions)
    return (time.perf_counter() - start) / repeats


def ase_rate(run: Path, frame, steps: int) -> float:
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize

    atoms = frame.copy()
    atoms.calc = BoltzmatchCalculator(run)
    thermalize(atoms, temperature_K=TEMPERATURE, rng=np.random.default_rng(0))
    dyn = Langevin(atoms, TIMESTEP * units.fs, temperature_K=TEMPERATURE, friction=FRICTION / units.fs,
                   fixcm=False, rng=np.random.default_rng(0))
    dyn.run(5)
    start = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - start)


def export_for_peer(run: Path, path: Path) -> None:
    """Our SchNet's weights under SchNetPack's parameter names (energy scale folded into the last layer)."""
    model = boltzmatch.load(run)
    state = model.state_dict()
    scale = float(model.energy_scale)
    out = {"representation.embedding.weight": state["embedding.weight"]}
    for k in range(CONFIG["n_interactions"]):
        p, q = f"interactions.{k}.", f"representation.interactions.{k}."
        out[q + "in2f.weight"] = state[p + "in2f.weight"]
        for a, b in (("filter.0", "filter_network.0"), ("filter.2", "filter_network.1"), ("f2out.0", "f2out.0"),
                     ("f2out.2", "f2out.1")):
            out[q + b + ".weight"] = state[p + a + ".weight"]
            out[q + b + ".bias"] = state[p + a + ".bias"]
    out["output_modules.0.outnet.0.weight"] = state["output.0.weight"]
    out["output_modules.0.outnet.0.bias"] = state["output.0.bias"]
    out["output_modules.0.outnet.1.weight"] = scale * state["output.2.weight"]
    out["output_modules.0.outnet.1.bias"] = scale * state["output.2.bias"]
    torch.save({"config": CONFIG, "state": {k: v.float() for k, v in out.items()}}, path)


def peer_rates(run: Path, frame_path: Path, replicas: list[int], steps: int) -> dict:
    if not PEER_PYTHON.exists():
        return {"error": f"no SchNetPack environment at {PEER_PYTHON}; see the module docstring"}
    weights = CACHE / "md_throughput_spk_weights.pt"
    export_for_peer(run, weights)
    # our forces on the first frame, to check the port
    model = boltzmatch.load(run)
    frame = read_structures(frame_path)[0]
    batch = boltzmatch.AtomsBatch.from_atoms([frame], dtype=torch.float32)
    _, forces = boltzmatch.energy_and_forces(model, batch)
    np.save(CACHE / "md_throughput_forces.npy", forces.detach().double().numpy())
    cmd = [str(PEER_PYTHON), str(PEER_SCRIPT), "--weights", str(weights), "--frame", str(frame_path),
           "--forces", str(CACHE / "md_throughput_forces.npy"), "--steps", str(steps),
           "--temperature", str(TEMPERATURE), "--timestep", str(TIMESTEP), "--friction", str(FRICTION),
           "--replicas", *map(str, replicas)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--ase-steps", type=int, default=200)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--install-peer", action="store_true", help="make benchmarks/.peers/schnetpack first")
    args = parser.parse_args()
    if args.install_peer:
        install_schnetpack_peer()

    data = ethanol_data("ethanol500K_train1000", frames=1100, seed=1)
    run = trained_schnet(data)
    frames = read_structures(data)[:256]
    model = boltzmatch.load(run)
    model64 = boltzmatch.load(run).double()  # SchNetPackCalculator runs its model in float64
    results: dict = {"config": CONFIG, "steps": args.steps, "temperature": TEMPERATURE, "timestep_fs": TIMESTEP,
                     "boltzmatch": {}, "boltzmatch_float64": {}, "model_only": {}}
    for r in args.replicas:
        results["boltzmatch"][str(r)] = batched_rate(model, frames, r, args.steps)
        results["boltzmatch_float64"][str(r)] = batched_rate(model64, frames, r, args.steps)
        seconds = model_rate(model, frames, r, repeats=max(5, args.steps // 4))
        results["model_only"][str(r)] = {"seconds_per_step": seconds, "replica_steps_per_second": r / seconds}
        print(f"boltzmatch {r:4d} replicas: {results['boltzmatch'][str(r)]['replica_steps_per_second']:9.1f} "
              f"replica-steps/s (model alone {r / seconds:9.1f})", flush=True)
    results["ase_steps_per_second"] = ase_rate(run, frames[0], args.ase_steps)
    print(f"ASE Langevin + BoltzmatchCalculator: {results['ase_steps_per_second']:.1f} steps/s", flush=True)
    if not args.no_peer:
        first = CACHE / "md_throughput_frame.xyz"
        boltzmatch.write_structures(first, [frames[0]])
        results["schnetpack"] = peer_rates(run, first, args.replicas, args.steps)
        print(f"SchNetPack: {results['schnetpack']}", flush=True)

    rows = []
    peer = results.get("schnetpack", {})
    for r in args.replicas:
        ours = results["boltzmatch"][str(r)]["replica_steps_per_second"]
        alone = results["model_only"][str(r)]["replica_steps_per_second"]
        overhead = alone / ours - 1.0  # (t_step − t_model) / t_model
        theirs = peer.get("rates", {}).get(str(r))
        ours64 = results["boltzmatch_float64"][str(r)]["replica_steps_per_second"]
        rows.append([r, round(ours, 1), round(alone, 1), f"{100 * overhead:.1f}%",
                     round(ours / results["ase_steps_per_second"], 1), round(ours64, 1),
                     "–" if theirs is None else round(theirs, 1), "–" if theirs is None else round(ours / theirs, 2),
                     "–" if theirs is None else round(ours64 / theirs, 2)])
        results["boltzmatch"][str(r)]["overhead_fraction"] = overhead
        results["boltzmatch"][str(r)]["vs_ase"] = ours / results["ase_steps_per_second"]
        if theirs is not None:
            results["boltzmatch"][str(r)]["vs_schnetpack"] = ours / theirs
            results["boltzmatch_float64"][str(r)]["vs_schnetpack"] = ours64 / theirs
    at64 = results["boltzmatch"].get("64", {})
    results["goals"] = {"vs_ase_at_64 >= 20": at64.get("vs_ase", 0) >= 20,
                        "vs_schnetpack_at_64 >= 1.5": at64.get("vs_schnetpack", 0) >= 1.5,
                        "float64_vs_schnetpack_at_64 >= 1.5":
                            results["boltzmatch_float64"].get("64", {}).get("vs_schnetpack", 0) >= 1.5,
                        "overhead_at_64 <= 0.15": at64.get("overhead_fraction", 1) <= 0.15}
    print(write_results("md_throughput", results, rows,
                        ["replicas", "boltzmatch float32 (replica-steps/s)", "model alone", "overhead",
                         "× ASE (1 replica)", "boltzmatch float64", "SchNetPack (float64)", "× SchNetPack",
                         "float64 × SchNetPack"]))
    print(json.dumps(results["goals"]))


if __name__ == "__main__":
    main()
