"""MD throughput, round robin: boltzmatch's batched Langevin MD against ASE (one replica at a time)
and against SchNetPack 2.1.1's own MD, alternating in one process so that machine noise hits all alike.

One SchNet (64 features, 3 interactions, 20 Gaussians, 5 Å cutoff) on GFN2-xTB ethanol. Every round
runs, in this order: ``boltzmatch.simulate`` with 64 replicas in float32 as a user runs it
(trajectories and thermo written every 20 steps) and without output; ASE's Langevin driving
``BoltzmatchCalculator`` with the same model (float32, one replica); ``simulate`` in float64; SchNetPack's
MD (System + VelocityVerlet + LangevinThermostat, replicas batched by SchNetPack, ``Simulator.to(dtype)``)
with the *same weights* ported into ``schnetpack.representation.SchNet``, at 64 replicas in float32 and
float64 and at 256 in float32; ``simulate`` at 256 replicas; ``simulate`` at 64 replicas with
``exact_filters=True`` in float32 and float64. Ratios are taken within a round; the table gives their
median and range over ``--rounds`` (≥ 5).

``simulate`` evaluates SchNet's filter networks from cubic Hermite tables by default
(``boltzmatch.models.filter_table``); the table also reports the ratios with exact filters, the
tables' own speed-up, and how far the tabulated forces are from the exact ones. ASE drives
``BoltzmatchCalculator``, which evaluates the model exactly.

Issue 19's goals (median over rounds): ≥ 25× ASE at 64 replicas; ≥ 3× SchNetPack in float32 and ≥ 2×
in float64; the share of a step spent outside the model's forward and backward ≤ 10 % (measured inside
``simulate``'s own loop, ``summary["timing"]``, not by timing the model separately). A last pass
repeats ``simulate`` at 64 and 256 replicas with ``skin=0`` (a neighbour search every step) to show what
reusing the pairs saves, and a scaling pass runs 1, 8, 64 and 256 replicas once.

The peer runs in its own virtual environment (``benchmarks/.peers/schnetpack``, torch 2.4.1), made by
``--install-peer`` or by hand: ``python3.11 -m venv benchmarks/.peers/schnetpack &&
benchmarks/.peers/schnetpack/bin/pip install torch==2.4.1 schnetpack==2.1.1``.

Usage: python benchmarks/md_throughput.py [--rounds 5] [--steps 500] [--no-peer]
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
    cell,
    ethanol_data,
    install_schnetpack_peer,
    spread,
    thermalize,
    trained_schnet,
    write_results,
)

import boltzmatch
from boltzmatch.data import read_structures
from boltzmatch.simulate import BoltzmatchCalculator, simulate

CONFIG = SCHNET_CONFIG
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "schnetpack_md.py"
TEMPERATURE, TIMESTEP, FRICTION = 500.0, 0.5, 0.01  # K, fs, 1/fs


def batched_rate(model, frames, replicas: int, steps: int, *, output: bool = False, skin: float | None = None,
                 exact_filters: bool = False) -> dict:
    """``simulate``'s replica-steps per second and its own timing of the loop; ``output`` writes
    trajectories and thermo every 20 steps (the command's default); ``exact_filters`` turns off the
    filter tables that ``simulate`` uses by default."""
    options = {"exact_filters": exact_filters} if skin is None else {"skin": skin, "exact_filters": exact_filters}
    with tempfile.TemporaryDirectory() as tmp:
        s = simulate(model, frames, out=tmp, replicas=replicas, time=steps * TIMESTEP / 1000, timestep=TIMESTEP,
                     friction=FRICTION, temperature=TEMPERATURE, interval=20 if output else 10**9,
                     write_trajectories=output, progress=False, seed=0, **options)
    timing = s["timing"]
    return {"replica_steps_per_second": s["replica_steps_per_second"], "collapsed": s["n_collapsed"],
            "outside_model_fraction": timing["outside_model_fraction"],
            "model_replica_steps_per_second": s["steps"] * replicas / max(timing["model_seconds"], 1e-9),
            "neighbor_searches": timing["neighbor_searches"], "steps": s["steps"]}


def table_force_error(model, frames) -> float:
    """Largest |F_table − F_exact| (eV/Å) over the atoms of ``frames``, in the model's dtype."""
    from boltzmatch.data import AtomsBatch
    from boltzmatch.models.base import energy_and_forces, model_dtype

    batch = AtomsBatch.from_atoms(frames, dtype=model_dtype(model))
    _, exact = energy_and_forces(model, batch)
    _, tabulated = energy_and_forces(model.for_md(), batch)
    return float((tabulated - exact).abs().max())


def ase_rate(run: Path, frame, steps: int) -> float:
    """Steps per second of ASE's Langevin with ``BoltzmatchCalculator`` (one replica)."""
    from ase import units
    from ase.md.langevin import Langevin

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


def peer_rates(weights: Path, frame_path: Path, replicas: list[int], steps: int, dtypes: list[str]) -> dict:
    """SchNetPack's MD in its own environment: {"rates": {dtype: {replicas: replica-steps/s}}, ...}."""
    cmd = [str(PEER_PYTHON), str(PEER_SCRIPT), "--weights", str(weights), "--frame", str(frame_path),
           "--forces", str(CACHE / "md_throughput_forces.npy"), "--steps", str(steps),
           "--temperature", str(TEMPERATURE), "--timestep", str(TIMESTEP), "--friction", str(FRICTION),
           "--replicas", *map(str, replicas), "--dtypes", *dtypes]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare_peer(run: Path, frames) -> tuple[Path, Path]:
    """Our weights under SchNetPack's names and our forces on the first frame (to check the port)."""
    weights = CACHE / "md_throughput_spk_weights.pt"
    export_for_peer(run, weights)
    frame_path = CACHE / "md_throughput_frame.xyz"
    boltzmatch.write_structures(frame_path, [frames[0]])
    model = boltzmatch.load(run)
    batch = boltzmatch.AtomsBatch.from_atoms([frames[0]], dtype=torch.float32)
    _, forces = boltzmatch.energy_and_forces(model, batch)
    np.save(CACHE / "md_throughput_forces.npy", forces.detach().double().numpy())
    return weights, frame_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500, help="MD steps per boltzmatch and ASE run (0.25 ps)")
    parser.add_argument("--peer-steps", type=int, default=200)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--install-peer", action="store_true", help="make benchmarks/.peers/schnetpack first")
    args = parser.parse_args()
    if args.install_peer:
        install_schnetpack_peer()

    data = ethanol_data("ethanol500K_train1000", frames=1100, seed=1)
    run = trained_schnet(data)
    frames = read_structures(data)[:256]
    model = boltzmatch.load(run)
    model64 = boltzmatch.load(run).double()
    use_peer = not args.no_peer and PEER_PYTHON.exists()
    if use_peer:
        weights, frame_path = prepare_peer(run, frames)
    runs: dict[str, list] = {k: [] for k in ("ours32_64", "ours32_64_output", "ours64_64", "ours32_256", "ase",
                                             "spk32_64", "spk64_64", "spk32_256", "ours32_64_exact",
                                             "ours64_64_exact")}
    peer_info: dict = {}
    table_error = {"float32": table_force_error(model, frames[:64]), "float64": table_force_error(model64, frames[:64])}
    for k in range(args.rounds):
        runs["ours32_64_output"].append(batched_rate(model, frames, 64, args.steps, output=True))
        runs["ours32_64"].append(batched_rate(model, frames, 64, args.steps))
        runs["ase"].append(ase_rate(run, frames[0], args.steps))
        runs["ours64_64"].append(batched_rate(model64, frames, 64, args.steps))
        runs["ours32_64_exact"].append(batched_rate(model, frames, 64, args.steps, exact_filters=True))
        runs["ours64_64_exact"].append(batched_rate(model64, frames, 64, args.steps, exact_filters=True))
        if use_peer:
            peer = peer_rates(weights, frame_path, [64], args.peer_steps, ["float32", "float64"])
            peer256 = peer_rates(weights, frame_path, [256], args.peer_steps, ["float32"])
            if "error" in peer or "error" in peer256:
                raise SystemExit(f"SchNetPack peer failed: {peer.get('error') or peer256.get('error')}")
            peer_info = {k2: v for k2, v in peer.items() if k2 != "rates"}
            runs["spk32_64"].append(peer["rates"]["float32"]["64"])
            runs["spk64_64"].append(peer["rates"]["float64"]["64"])
            runs["spk32_256"].append(peer256["rates"]["float32"]["256"])
        runs["ours32_256"].append(batched_rate(model, frames, 256, max(100, args.steps // 2)))
        print(f"round {k + 1}/{args.rounds}: boltzmatch 64 {runs['ours32_64'][-1]['replica_steps_per_second']:.0f} "
              f"(with output {runs['ours32_64_output'][-1]['replica_steps_per_second']:.0f}, float64 "
              f"{runs['ours64_64'][-1]['replica_steps_per_second']:.0f}), 256 "
              f"{runs['ours32_256'][-1]['replica_steps_per_second']:.0f} replica-steps/s; ASE {runs['ase'][-1]:.1f} "
              "steps/s" + (f"; SchNetPack 64 {runs['spk32_64'][-1]:.0f} (float64 {runs['spk64_64'][-1]:.0f}), "
                           f"256 {runs['spk32_256'][-1]:.0f}" if use_peer else ""), flush=True)

    def rate(key: str, r: int) -> float:
        return runs[key][r]["replica_steps_per_second"]

    n = args.rounds
    ratios = {
        "output_vs_ase_at_64": spread([rate("ours32_64_output", r) / runs["ase"][r] for r in range(n)]),
        "vs_ase_at_64": spread([rate("ours32_64", r) / runs["ase"][r] for r in range(n)]),
        "float64_vs_ase_at_64": spread([rate("ours64_64", r) / runs["ase"][r] for r in range(n)]),
    }
    if use_peer:
        ratios.update({
            "vs_schnetpack_float32_at_64": spread([rate("ours32_64", r) / runs["spk32_64"][r] for r in range(n)]),
            "vs_schnetpack_float64_at_64": spread([rate("ours64_64", r) / runs["spk64_64"][r] for r in range(n)]),
            "vs_schnetpack_float32_at_256": spread([rate("ours32_256", r) / runs["spk32_256"][r] for r in range(n)]),
            "exact_vs_schnetpack_float32_at_64": spread([rate("ours32_64_exact", r) / runs["spk32_64"][r]
                                                          for r in range(n)]),
            "exact_vs_schnetpack_float64_at_64": spread([rate("ours64_64_exact", r) / runs["spk64_64"][r]
                                                          for r in range(n)]),
        })
    ratios["exact_vs_ase_at_64"] = spread([rate("ours32_64_exact", r) / runs["ase"][r] for r in range(n)])
    for bits in ("32", "64"):
        ratios[f"table_speedup_float{bits}_at_64"] = spread([rate(f"ours{bits}_64", r) / rate(f"ours{bits}_64_exact", r)
                                                             for r in range(n)])
    outside = {key: spread([x["outside_model_fraction"] for x in runs[key]])
               for key in ("ours32_64", "ours32_64_output", "ours64_64", "ours32_256")}

    # neighbour search every step (skin 0) against reused pairs, back to back
    ablation = {}
    for r in (64, 256):
        steps = args.steps if r == 64 else max(100, args.steps // 2)
        ablation[str(r)] = {"reused": batched_rate(model, frames, r, steps),
                            "search_every_step": batched_rate(model, frames, r, steps, skin=0.0)}
    scaling = {str(r): {"float32": batched_rate(model, frames, r, args.steps),
                        "float64": batched_rate(model64, frames, r, args.steps)} for r in (1, 8, 64, 256)}

    results = {"config": CONFIG, "steps": args.steps, "peer_steps": args.peer_steps, "rounds": n,
               "temperature": TEMPERATURE, "timestep_fs": TIMESTEP, "runs": runs, "ratios": ratios,
               "outside_model_fraction": outside, "neighbor_reuse_ablation": ablation, "scaling": scaling,
               "schnetpack": peer_info, "table_force_error_eV_per_A": table_error}
    results["goals"] = {
        "vs_ase_at_64 >= 25": ratios["vs_ase_at_64"]["median"] >= 25,
        "vs_schnetpack_float32_at_64 >= 3": ratios.get("vs_schnetpack_float32_at_64", {}).get("median", 0) >= 3,
        "vs_schnetpack_float64_at_64 >= 2": ratios.get("vs_schnetpack_float64_at_64", {}).get("median", 0) >= 2,
        "outside_model_at_64 <= 0.10": outside["ours32_64"]["median"] <= 0.10,
    }
    rows = [
        ["× ASE, 64 replicas, float32, no output", cell(ratios["vs_ase_at_64"]), "≥ 25"],
        ["× ASE, 64 replicas, float32, trajectories every 20 steps", cell(ratios["output_vs_ase_at_64"]), ""],
        ["× ASE, 64 replicas, float64 (ASE float32)", cell(ratios["float64_vs_ase_at_64"]), ""],
        ["× ASE, 64 replicas, float32, exact filters", cell(ratios["exact_vs_ase_at_64"]), ""],
        ["filter tables' speed-up, 64 replicas, float32 / float64",
         f"{cell(ratios['table_speedup_float32_at_64'], 2)} / {cell(ratios['table_speedup_float64_at_64'], 2)}", ""],
    ]
    if use_peer:
        rows += [["× SchNetPack, 64 replicas, float32", cell(ratios["vs_schnetpack_float32_at_64"], 2), "≥ 3"],
                 ["× SchNetPack, 64 replicas, float64", cell(ratios["vs_schnetpack_float64_at_64"], 2), "≥ 2"],
                 ["× SchNetPack, 256 replicas, float32", cell(ratios["vs_schnetpack_float32_at_256"], 2), ""],
                 ["× SchNetPack, 64 replicas, float32 / float64, exact filters",
                  f"{cell(ratios['exact_vs_schnetpack_float32_at_64'], 2)} / "
                  f"{cell(ratios['exact_vs_schnetpack_float64_at_64'], 2)}", ""]]
    rows += [[f"share of a step outside the model, {label}", cell({k: 100 * v for k, v in outside[key].items()
                                                                    if k != "rounds"}) + " %",
              "≤ 10 %" if key == "ours32_64" else ""]
             for key, label in (("ours32_64", "64 replicas"), ("ours32_64_output", "64 replicas with output"),
                                ("ours64_64", "64 replicas float64"), ("ours32_256", "256 replicas"))]
    rows += [["max |F_table − F_exact| on 64 frames, float32 / float64 (eV/Å)",
              f"{table_error['float32']:.1e} / {table_error['float64']:.1e}", ""]]
    rows += [["boltzmatch replica-steps/s, 64 / 256 replicas",
              f"{cell(spread([x['replica_steps_per_second'] for x in runs['ours32_64']]), 0)} / "
              f"{cell(spread([x['replica_steps_per_second'] for x in runs['ours32_256']]), 0)}", ""],
             ["ASE steps/s (1 replica)", cell(spread(runs["ase"])), ""]]
    if use_peer:
        rows += [["SchNetPack replica-steps/s, 64 float32 / 64 float64 / 256 float32",
                  f"{cell(spread(runs['spk32_64']), 0)} / {cell(spread(runs['spk64_64']), 0)} / "
                  f"{cell(spread(runs['spk32_256']), 0)}", ""]]
    for r, pair in ablation.items():
        a, b = pair["reused"], pair["search_every_step"]
        rows.append([f"{r} replicas: pairs reused / searched every step",
                     f"{a['replica_steps_per_second']:.0f} / {b['replica_steps_per_second']:.0f} replica-steps/s; "
                     f"outside model {100 * a['outside_model_fraction']:.1f} % / "
                     f"{100 * b['outside_model_fraction']:.1f} %; searches {a['neighbor_searches']} / "
                     f"{b['neighbor_searches']}", ""])
    for r, pair in scaling.items():
        rows.append([f"scaling, {r} replicas: float32 / float64 replica-steps/s",
                     f"{pair['float32']['replica_steps_per_second']:.0f} / "
                     f"{pair['float64']['replica_steps_per_second']:.0f}", ""])
    print(write_results("md_throughput", results, rows,
                        ["measure", f"median (min–max) of {n} rounds", "goal"]))
    print(json.dumps(results["goals"]))


if __name__ == "__main__":
    main()
