"""Issue 40: the same work on the CPU and on a GPU, side by side: training structures/s (SchNet, PaiNN,
MACE), MD replica-steps/s at 64 … 4,096 replicas (SchNet, MACE), and the cost of one score-matching step
(dsm, antithetic; fisher). Every case runs through the commands' own Python API with ``device=`` (the one
code path); the GPU column is measured only where ``torch.cuda.is_available()`` and stays empty otherwise,
never estimated. The card's name goes into the JSON and the table title.

Data: GFN2-xTB ethanol at 500 K (cached by benchmarks/common.py). Models: SchNet 64 features, 3
interactions, 5 Å; PaiNN 64 features, 3 interactions, 5 Å; MACE 32×0e + 32×1o, L_max 1, correlation 2,
5 Å; all float32. Training: ``--train-frames`` structures, batch 32, ``--epochs`` epochs after one warm-up
epoch (structures/s = epochs × training structures / wall time, validation included as a user sees it).
Part ``target`` (the goal's "at equal force error"): seconds until SchNet first validates at ≤ 100 meV/Å force MAE
on ``--target-frames`` frames, at each device's batch sizes (CPU 16, 32, 64; GPU 32, 128, 512; learning rate
1e-3·√(batch/32)); the fastest counts.
MD: Langevin 0.5 fs, 500 K, no trajectories written, ``--md-steps`` steps after a warm-up run.
Score matching: ms per optimiser step at batch 32 (median of ``--score-steps``). Part ``qm9``: SchNet trained on
``--qm9-molecules`` QM9 molecules (3 to 29 atoms, energy U0 alone, batch 32), structures/s as for ethanol; on CUDA
also with ``--cuda-graphs``, whose batches of different molecules are padded to one shape (training/padding.py),
with the share of steps that replayed. Part ``compile``
(its own table, accelerator_compile): the MD force call of SchNet at 64 replicas as it is and under
``torch.compile(dynamic=True)``.

Goals on one GPU (issue 40): SchNet MD ≥ 10⁶ replica-steps/s on ethanol at 4,096 replicas; training ≥ 20×
the 2-core CPU's structures/s at equal force error.

Usage: python benchmarks/accelerator.py [--part train md score] [--max-replicas 4096] [--update]
(``--update``: measure only ``--part``; the other parts keep their rows, every device's, from the results JSON.)
On a GPU machine: ``--devices cuda --cpu-from benchmarks/results/accelerator.json`` measures the GPU alone and
takes the CPU column from the 2-core CPU's committed run (scripts/gpu_check.sh does this).
Writes benchmarks/results/accelerator.{json,md} (and accelerator_compile.{json,md}).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, ethanol_data, qm9_data, write_results

import boltzmatch
from boltzmatch.data import read_structures
from boltzmatch.training.settings import auto_ema_decay

MODELS = {"schnet": {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20},
          "painn": {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20},
          "mace": {"r_max": 5.0, "hidden_irreps": "32x0e + 32x1o", "max_ell": 1, "correlation": 2}}
REPLICAS = (64, 256, 1024, 4096)
#: the graphed MD rows run this many times --md-steps
GRAPHED_MD_STEPS = 5
#: part ``target``: SchNet trained until its validation force MAE first reaches this (meV/Å), on each device at
#: the batch sizes that suit it (Adam's learning rate scaled by √(batch/32)); the fastest counts
TARGET_MEV_A = 100.0
TARGET_BATCHES = {"cpu": (16, 32, 64), "cuda": (32, 128, 512)}
#: on CUDA each batch size also runs with its steps replayed as CUDA graphs (``cuda_graphs=True``): at these
#: batches a step's cost is the host's launches (docs/gpu.md)
TARGET_GRAPHS = {"cpu": (False,), "cuda": (False, True)}


def devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def card() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def training_rate(model: str, data: Path, device: str, epochs: int, cuda_graphs: bool = False) -> dict:
    """Structures per second of ``boltzmatch.train`` (energy-forces) and the validation force MAE it reached."""
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(model=model, config=MODELS[model], batch_size=32, val_fraction=0.1, test_fraction=0.0,
                      progress=False, device=device, ema_decay=None, cuda_graphs=cuda_graphs)
        boltzmatch.train(data, out=f"{tmp}/warm", epochs=1, **common)
        summary = boltzmatch.train(data, out=f"{tmp}/run", epochs=epochs, **common)
    return {"structures_per_second": epochs * summary["n_train"] / summary["wall_seconds"],
            "val_force_mae_meV_A": summary["val_force_mae_meV_A"]}


def qm9_training_rate(data: Path, device: str, epochs: int, cuda_graphs: bool = False) -> dict:
    """Structures per second of ``boltzmatch.train`` (SchNet, energy alone) on QM9 molecules, the validation energy MAE
    (meV/atom) and, with ``cuda_graphs``, how many steps replayed a graph and the padded batch's atoms."""
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(model="schnet", config=MODELS["schnet"], objective="energy", batch_size=32, val_fraction=0.1,
                      test_fraction=0.0, progress=False, device=device, ema_decay=None, cuda_graphs=cuda_graphs)
        boltzmatch.train(data, out=f"{tmp}/warm", epochs=1, **common)
        summary = boltzmatch.train(data, out=f"{tmp}/run", epochs=epochs, **common)
    return {"structures_per_second": epochs * summary["n_train"] / summary["wall_seconds"],
            "val_energy_mae_meV_atom": summary["val_energy_mae_meV_atom"],
            **{k: summary[k] for k in ("cuda_graph_steps", "steps", "padded_atoms") if k in summary}}


def time_to_target(data: Path, device: str, batch_size: int, target: float, cuda_graphs: bool = False) -> dict:
    """Seconds until ``boltzmatch.train`` (SchNet, energy-forces, the weights' average at its default ``auto`` decay)
    first validates at ≤ ``target`` meV/Å force MAE: the run's own ``time_s`` (training, validation and the run
    files, what a user waits for)."""
    scale = (batch_size / 32) ** 0.5
    with tempfile.TemporaryDirectory() as tmp:
        boltzmatch.train(data, out=f"{tmp}/run", model="schnet", config=MODELS["schnet"], epochs=round(60 * scale),
                         batch_size=batch_size, lr=1e-3 * scale, val_fraction=0.1, test_fraction=0.0, patience=10**6,
                         progress=False, device=device, cuda_graphs=cuda_graphs)
        with open(f"{tmp}/run/metrics.csv") as handle:
            rows = list(csv.DictReader(handle))
    hit = next((r for r in rows if float(r["val_force_mae_meV_A"]) <= target), None)
    return {"batch_size": batch_size, "cuda_graphs": cuda_graphs, "lr": 1e-3 * scale,
            "ema_decay": auto_ema_decay(batch_size), "epochs_run": len(rows),
            "epochs": None if hit is None else int(hit["epoch"]),
            "seconds": None if hit is None else float(hit["time_s"]),
            "best_val_force_mae_meV_A": min(float(r["val_force_mae_meV_A"]) for r in rows)}


def fastest_to_target(data: Path, device: str, target: float) -> dict:
    """:func:`time_to_target` at each of the device's batch sizes (and with and without CUDA graphs there);
    ``seconds`` is the fastest that got there."""
    runs = [time_to_target(data, device, b, target, g) for b in TARGET_BATCHES[device] for g in TARGET_GRAPHS[device]]
    reached = [r["seconds"] for r in runs if r["seconds"] is not None]
    return {"seconds": min(reached) if reached else None, "runs": runs}


def md_rate(run: Path, frames: list, replicas: int, device: str, steps: int, cuda_graphs: bool = False) -> float:
    """Replica-steps per second of ``boltzmatch.simulate`` (timed inside its own loop, which with ``cuda_graphs``
    includes the warm-up calls and the capture)."""
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(out=tmp, replicas=replicas, timestep=0.5, temperature=500.0, interval=steps,
                      check_interval=steps, write_trajectories=False, progress=False, device=device,
                      cuda_graphs=cuda_graphs)
        boltzmatch.simulate(run, frames, time=min(steps, 4) * 0.5e-3, **common)  # warm-up (allocations, tables)
        summary = boltzmatch.simulate(run, frames, time=steps * 0.5e-3, **{**common, "out": f"{tmp}/timed"})
    return summary["replica_steps_per_second"]


def precision_errors(data: Path, device: str, epochs: int) -> dict:
    """SchNet trained ``epochs`` epochs at each precision on ``device``: validation force MAE (meV/Å) and
    structures/s, from one seed (the same split and initial weights)."""
    out = {}
    for precision in ("float32", "tf32", "bf16", "fp16"):
        if precision == "tf32" and device == "cpu":
            continue  # TF32 is a CUDA matmul mode
        with tempfile.TemporaryDirectory() as tmp:
            summary = boltzmatch.train(data, out=f"{tmp}/run", model="schnet", config=MODELS["schnet"], epochs=epochs,
                                       batch_size=32, progress=False, device=device, precision=precision,
                                       test_fraction=0.0)
        out[precision] = {"val_force_mae_meV_A": summary["val_force_mae_meV_A"],
                          "structures_per_second": epochs * summary["n_train"] / summary["wall_seconds"]}
    return out


def compiled_md_rate(run: Path, frames: list, device: str, steps: int = 30) -> dict:
    """Replica-steps/s of MD force calls (64 replicas, small random moves) with the model as it is and under
    ``torch.compile(dynamic=True)``, after the compiled one's warm-up; and the largest force difference."""
    from boltzmatch.data.atoms_batch import AtomsBatch
    from boltzmatch.runs import run_dir as rd
    from boltzmatch.simulate.forces import ModelForces
    from boltzmatch.utils.device import resolve_device

    dev = resolve_device(device)
    model = rd.load(run, map_location=dev)
    batch = AtomsBatch.from_atoms(frames[:64], device=dev)
    start_positions = batch.positions.double()

    def rate(forces: ModelForces) -> float:
        generator = torch.Generator(device=dev).manual_seed(0)
        positions = start_positions.clone()
        for _ in range(3):
            forces(positions)
        begin = time.perf_counter()
        for _ in range(steps):
            positions = positions + 1e-3 * torch.randn(positions.shape, generator=generator, device=dev,
                                                       dtype=positions.dtype)
            forces(positions)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return steps * 64 / (time.perf_counter() - begin)

    plain = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    compiled = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    compiled.evaluate = torch.compile(compiled.evaluate, dynamic=True)
    begin = time.perf_counter()
    difference = float((plain(start_positions)[1] - compiled(start_positions)[1]).abs().max())
    compile_seconds = time.perf_counter() - begin
    return {"plain": rate(plain), "compiled": rate(compiled), "compile_seconds": compile_seconds,
            "max_force_difference_eV_A": difference}


def score_step_ms(run: Path, data: Path, objective: str, device: str, steps: int) -> float:
    """Median wall time (ms) of one optimiser step of ``objective`` on SchNet at batch 32."""
    from boltzmatch.data.packed import PackedStructures
    from boltzmatch.objectives.registry import make_objective
    from boltzmatch.objectives.score import dsm_sigma_from_data
    from boltzmatch.runs import run_dir as rd
    from boltzmatch.utils.device import resolve_device

    dev = resolve_device(device)
    model = rd.load(run, map_location=dev).train()
    frames = read_structures(data)[:256]
    packed = PackedStructures(frames).to(dev)
    sigma = [dsm_sigma_from_data(frames)]
    fn = make_objective(objective, temperature=500.0, energy_weight=0.0, force_weight=0.0, sigma=sigma,
                        antithetic=objective == "dsm")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for k in range(steps + 3):
        batch = packed.batch(list(range((32 * k) % 224, (32 * k) % 224 + 32)))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss, _ = fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if k >= 3:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


#: the settings a GPU run takes from the --cpu-from run, so that both columns measure the same work
SHARED_SETTINGS = ("train_frames", "target_frames", "epochs", "md_steps", "score_steps", "precision_epochs",
                   "qm9_molecules")


def earlier_cpu(path: Path | None) -> tuple[dict, dict]:
    """The CPU measurements of an earlier run of this benchmark (``--cpu-from``: the 2-core CPU of record, which
    the goals name) and of its compile table beside it, each case reduced to its ``cpu`` entry; ``machine`` and
    ``settings`` are the earlier run's."""
    if path is None:
        return {}, {}
    import json

    earlier = json.loads(path.read_text())
    cases = {k: {"cpu": v["cpu"]} for k, v in earlier.items() if isinstance(v, dict) and "cpu" in v}
    if earlier.get("precision", {}).get("device") == "cpu":  # the table's first layout: one device per run
        cases["precision"] = {"cpu": {k: v for k, v in earlier["precision"].items() if k != "device"}}
    compile_path = path.with_name("accelerator_compile.json")
    compiled = json.loads(compile_path.read_text()).get("compile", {}) if compile_path.exists() else {}
    cases["machine"], cases["settings"] = earlier.get("machine", {}), earlier.get("settings", {})
    return cases, {"cpu": compiled["cpu"]} if "cpu" in compiled else {}


#: the results keys of each part (the first words of the key)
PART_KEYS = {"train": "train ", "target": "target", "md": "md ", "score": "score ", "precision": "precision",
             "qm9": "qm9 "}


def kept_parts(measured: list[str]) -> dict:
    """--update: the results of the parts not in ``measured`` from the last results JSON, by key; ``parts``
    names them, ``notes`` holds the JSON's other keys (such as ``cpu_best_of``)."""
    import json

    path = RESULTS / "accelerator.json"
    if not path.exists():
        raise SystemExit(f"--update: no {path} to keep the other parts from")
    earlier = json.loads(path.read_text())
    kept: dict = {"parts": set(), "notes": {}}
    for key, value in earlier.items():
        part = next((p for p, prefix in PART_KEYS.items() if key.startswith(prefix)), None)
        if part is not None and part not in measured:
            kept[key] = value
            kept["parts"].add(part)
        elif part is None and key not in ("machine", "card", "devices", "settings", "cpu_machine"):
            kept["notes"][key] = value
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ("train", "target", "qm9", "md", "score", "precision", "compile")
    parser.add_argument("--part", nargs="+", choices=parts, default=list(parts))
    parser.add_argument("--devices", nargs="+", choices=("cpu", "cuda"),
                        help="where to measure (default: the CPU, and CUDA where torch sees a GPU)")
    parser.add_argument("--cpu-from", type=Path,
                        help="take the CPU column from this earlier results JSON (the 2-core CPU of record the goals "
                             "name) instead of measuring this machine's CPU")
    parser.add_argument("--train-frames", type=int, default=320)
    parser.add_argument("--target-frames", type=int, default=900, help="frames of the time-to-target part")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--md-steps", type=int, default=20)
    parser.add_argument("--max-replicas", type=int, default=4096)
    parser.add_argument("--score-steps", type=int, default=20)
    parser.add_argument("--precision-epochs", type=int, default=10)
    parser.add_argument("--qm9-molecules", type=int, default=2000, help="QM9 molecules of part qm9")
    parser.add_argument("--update", action="store_true",
                        help="measure only --part; the other parts keep their rows (every device's) from "
                             "benchmarks/results/accelerator.json")
    args = parser.parse_args()
    kept = kept_parts(args.part) if args.update else {"parts": set(), "notes": {}}
    measure = args.devices or devices()
    if "cuda" in measure and not torch.cuda.is_available():
        raise SystemExit("--devices cuda: torch sees no GPU here")
    earlier, earlier_compile = earlier_cpu(args.cpu_from)
    cpu_machine = earlier.pop("machine", None) if args.cpu_from else None
    for key, value in earlier.pop("settings", {}).items():
        if key in SHARED_SETTINGS and getattr(args, key) != value:
            print(f"--{key.replace('_', '-')} {value}, as in {args.cpu_from}", flush=True)
            setattr(args, key, value)
    data = ethanol_data("ethanol_xtb_500K_1000", frames=1000, seed=1)
    frames = read_structures(data)
    results: dict = {"card": card(), "devices": measure, "settings": {**vars(args), "cpu_from": str(args.cpu_from)},
                     "cpu_machine": cpu_machine, **kept.pop("notes", {})}
    rows = []

    def measured_on(key: str, measure_one) -> dict:
        """``measure_one(device)`` on every device measured here, the CPU entry taken from --cpu-from if given; a
        part kept by --update as it was."""
        if key in kept:
            results[key] = kept[key]
            return kept[key]
        values = {**earlier.get(key, {}), **{d: measure_one(d) for d in measure if not (args.cpu_from and d == "cpu")}}
        results[key] = values
        return values

    def row(case: str, unit: str, values: dict, goal: str = "") -> None:
        """A row of both devices; the speed-up is the rate's ratio, or the time's inverse ratio (no speed-up for
        an error)."""
        cpu, gpu = values.get("cpu"), values.get("cuda")
        speedup = None
        if cpu is not None and gpu is not None and unit in ("ms", "s"):
            speedup = cpu / gpu
        elif cpu is not None and gpu is not None and unit.endswith("/s"):
            speedup = gpu / cpu
        rows.append([case, unit, cpu, gpu, speedup, goal])
        print(rows[-1], flush=True)

    gpu = card() or "no GPU on this machine: column left empty"
    threads = (cpu_machine or {}).get("threads", torch.get_num_threads())
    header = ["case", "unit", f"CPU ({threads} threads{', from ' + args.cpu_from.name if args.cpu_from else ''})",
              f"GPU ({gpu})", "GPU speed-up (×)", "goal"]

    def write() -> str:
        """The table so far, after every part: a run cut short by a time limit keeps what it measured."""
        return write_results("accelerator", results, rows, header) if rows else ""

    with tempfile.TemporaryDirectory() as tmp:
        from boltzmatch.data import write_structures

        subset = Path(tmp) / "train.xyz"
        write_structures(subset, frames[:args.train_frames])
        runs = {}
        for model in ("schnet", "mace") if {"md", "score", "compile"} & set(args.part) else ():
            # the MD and score-matching models: a few epochs are enough for stable MD
            runs[model] = Path(tmp) / model
            boltzmatch.train(subset, out=runs[model], model=model, config=MODELS[model], epochs=2, batch_size=32,
                             progress=False, device="cpu")
        if "train" in args.part or "train" in kept["parts"]:
            for model in MODELS:
                measured = measured_on(f"train {model}", lambda d, m=model: training_rate(m, subset, d, args.epochs))
                row(f"train {model}", "structures/s", {d: m["structures_per_second"] for d, m in measured.items()},
                    "GPU ≥ 20× at equal force error: see to val force MAE")
                row(f"train {model}: val force MAE after {args.epochs} epochs", "meV/Å",
                    {d: m["val_force_mae_meV_A"] for d, m in measured.items()}, "equal")
            # SchNet on CUDA with each batch shape's step replayed as a graph (a GPU mode; the CPU column is without)
            graphed = kept.get("train schnet cuda graphs") or (
                {"cuda": training_rate("schnet", subset, "cuda", args.epochs, cuda_graphs=True)} if "cuda" in measure
                else None)
            if graphed:
                results["train schnet cuda graphs"] = graphed
                plain = results.get("train schnet", {}).get("cpu") or {}
                row("train schnet, GPU with --cuda-graphs", "structures/s",
                    {"cpu": plain.get("structures_per_second"), "cuda": graphed["cuda"]["structures_per_second"]},
                    "GPU ≥ 20× at equal force error")
            write()
        if "target" in args.part or "target" in kept["parts"]:
            target_data = Path(tmp) / "target.xyz"
            write_structures(target_data, frames[:args.target_frames])
            measured = measured_on("target", lambda d: fastest_to_target(target_data, d, TARGET_MEV_A))
            row(f"train schnet to val force MAE ≤ {TARGET_MEV_A:g} meV/Å ({args.target_frames} frames, fastest batch)",
                "s", {d: m["seconds"] for d, m in measured.items()}, "GPU ≥ 20× at equal force error")
            write()
        if "qm9" in args.part or "qm9" in kept["parts"]:
            qm9 = qm9_data(args.qm9_molecules) if "qm9" in args.part else None
            case = f"train schnet qm9 ({args.qm9_molecules} molecules, energy, batch 32)"
            measured = measured_on("qm9 train schnet", lambda d: qm9_training_rate(qm9, d, args.epochs))
            row(case, "structures/s", {d: m["structures_per_second"] for d, m in measured.items()})
            row(f"{case}: val energy MAE after {args.epochs} epochs", "meV/atom",
                {d: m["val_energy_mae_meV_atom"] for d, m in measured.items()}, "equal")
            graphed = kept.get("qm9 train schnet cuda graphs") or (
                {"cuda": qm9_training_rate(qm9, "cuda", args.epochs, cuda_graphs=True)}
                if "cuda" in measure and qm9 is not None else None)
            if graphed:
                results["qm9 train schnet cuda graphs"] = graphed
                g = graphed["cuda"]
                row(f"{case}, GPU with --cuda-graphs (padded to {g.get('padded_atoms')} atoms)", "structures/s",
                    {"cpu": (results["qm9 train schnet"].get("cpu") or {}).get("structures_per_second"),
                     "cuda": g["structures_per_second"]})
                row(f"{case}, GPU with --cuda-graphs: steps replayed", "%",
                    {"cuda": 100 * g.get("cuda_graph_steps", 0) / max(g.get("steps", 0), 1)})
            write()
        if "md" in args.part or "md" in kept["parts"]:
            for model in ("schnet", "mace"):
                for replicas in (r for r in REPLICAS if r <= args.max_replicas):
                    measured = measured_on(f"md {model} {replicas}",
                                           lambda d, m=model, r=replicas: md_rate(runs[m], frames, r, d, args.md_steps))
                    goal = "GPU ≥ 10⁶" if (model, replicas) == ("schnet", 4096) else ""
                    row(f"md {model} {replicas} replicas", "replica-steps/s", measured, goal)
            # SchNet on CUDA with the force call replayed as a graph (a GPU mode; the CPU column is without), over
            # GRAPHED_MD_STEPS × --md-steps steps so that the capture's three calls weigh little
            for replicas in (r for r in REPLICAS if r <= args.max_replicas):
                key = f"md schnet {replicas} cuda graphs"
                graphed = kept.get(key) or ({"cuda": md_rate(runs["schnet"], frames, replicas, "cuda",
                                                             GRAPHED_MD_STEPS * args.md_steps, cuda_graphs=True)}
                                            if "cuda" in measure else None)
                if graphed:
                    results[key] = graphed
                    row(f"md schnet {replicas} replicas, GPU with --cuda-graphs", "replica-steps/s",
                        {"cpu": results.get(f"md schnet {replicas}", {}).get("cpu"), "cuda": graphed["cuda"]},
                        "GPU ≥ 10⁶" if replicas == 4096 else "")
            write()
        if "score" in args.part or "score" in kept["parts"]:
            for objective in ("dsm", "fisher"):
                measured = measured_on(f"score {objective}", lambda d, o=objective: score_step_ms(
                    runs["schnet"], data, o, d, args.score_steps))
                row(f"score step {objective} (SchNet, batch 32)", "ms", measured)
            write()
        if "precision" in args.part or "precision" in kept["parts"]:
            measured = measured_on("precision", lambda d: precision_errors(subset, d, args.precision_epochs))
            for precision in ("float32", "tf32", "bf16", "fp16"):
                values = {d: m[precision]["val_force_mae_meV_A"] for d, m in measured.items() if precision in m}
                if values:
                    row(f"SchNet {args.precision_epochs} epochs, {precision}", "val force MAE meV/Å", values,
                        "equal to float32's")
            write()
        if "compile" in args.part:  # its own table: torch.compile of the MD force call, where it helps
            measured = {**earlier_compile, **{d: compiled_md_rate(runs["schnet"], frames, d) for d in measure
                                               if not (args.cpu_from and d == "cpu")}}
            compile_rows = [[f"SchNet MD forces, 64 replicas, {d}", m["plain"], m["compiled"],
                             m["compiled"] / m["plain"], m["compile_seconds"], m["max_force_difference_eV_A"]]
                            for d, m in measured.items()]
            compile_results = {"card": card(), "compile": measured, "cpu_machine": cpu_machine}
            print(write_results("accelerator_compile", compile_results, compile_rows,
                                ["case", "plain (replica-steps/s)", "compiled", "compiled / plain", "compile (s)",
                                 "max |ΔF| (eV/Å)"]))
    print(write())  # --part compile alone writes only its own table


if __name__ == "__main__":
    main()
