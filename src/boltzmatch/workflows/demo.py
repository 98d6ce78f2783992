"""``boltzmatch demo``: the whole story on a laptop CPU, no network, no arguments.

1. GFN2-xTB ethanol reference data at 500 K (training trajectory and a separately seeded
   held-out trajectory);
2. energy-only fits: the linear potential (closed-form energy least squares) and SchNet (energy MSE);
3. Fisher fine-tuning of both at 500 K (the linear one reaches its Fisher optimum in closed form,
   from the same descriptors) and a SchNet trained by denoising score matching on positions alone;
4. batched MD with every model from the same starting frames and seed (16 replicas × 20 ps of
   Langevin MD at 1 fs), and the comparison report.

Wall-time budgets (not early stopping: patience is set out of reach) keep the full demo within
about 15 minutes on 2 CPU cores; ``quick=True`` is a
2-minute version with the same steps at toy sizes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..utils.table import format_table

SCHNET = {"cutoff": 5.0, "n_interactions": 2, "n_features": 32, "n_rbf": 16}


@dataclass(frozen=True)
class DemoSize:
    """Frames, training minutes and MD length of one demo size (times in minutes and ps)."""

    train_frames: int
    test_frames: int
    mse_minutes: float
    fisher_minutes: float
    dsm_minutes: float
    replicas: int
    time_ps: float
    timestep_fs: float


# 1 fs MD: at 0.5 fs the demo took 16.7 min (10.3 of them MD, 3 SchNet models surviving for long)
FULL = DemoSize(train_frames=1000, test_frames=200, mse_minutes=1.5, fisher_minutes=1.0, dsm_minutes=1.5,
                replicas=16, time_ps=20.0, timestep_fs=1.0)
QUICK = DemoSize(train_frames=120, test_frames=40, mse_minutes=0.15, fisher_minutes=0.1, dsm_minutes=0.15,
                 replicas=4, time_ps=0.25, timestep_fs=0.5)


def demo(out: str | Path = "boltzmatch-demo", *, quick: bool = False, temperature: float = 500.0, seed: int = 0,
         progress: bool = True, device: str = "auto") -> dict:
    """Run the demo into ``out``; returns the comparison result (``report`` is report.md's path).

    Finished stages are reused when ``out`` already holds them, so a killed demo continues where
    it stopped.
    """
    from ..analysis.compare import compare
    from ..data import generate, read_structures, write_structures
    from ..data.labels import make_structure
    from ..training import finetune, train

    size = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages: list[list] = []

    def stage(name: str, target: Path, make) -> Path:
        start = time.perf_counter()
        if target.exists():
            stages.append([name, "reused", 0.0])
            return target
        if progress:
            print(f"[demo] {name} ...", flush=True)
        make()
        stages.append([name, "done", time.perf_counter() - start])
        return target

    interval = 10
    train_data = stage("reference data: xTB ethanol, training trajectory", out / "ethanol-train.xyz",
                       lambda: generate("ethanol", out=out / "ethanol-train.xyz", calculator="xtb",
                                        temperature=temperature, time=size.train_frames * interval * 0.5 / 1000,
                                        interval=interval, equilibration=1000, seed=seed + 1, progress=progress))
    test_data = stage("reference data: xTB ethanol, held-out trajectory", out / "ethanol-test.xyz",
                      lambda: generate("ethanol", out=out / "ethanol-test.xyz", calculator="xtb",
                                       temperature=temperature, time=size.test_frames * interval * 0.5 / 1000,
                                       interval=interval,
                                       equilibration=1000, seed=seed + 2, progress=progress))

    def strip_labels():
        frames = read_structures(train_data)
        bare = [make_structure(a.numbers, a.positions) for a in frames]
        for a, b in zip(frames, bare, strict=True):
            b.info["temperature"] = a.info.get("temperature", temperature)
        write_structures(out / "ethanol-positions.xyz", bare)

    positions_only = stage("positions-only copy (no energies, no forces)", out / "ethanol-positions.xyz",
                           strip_labels)
    runs = out / "runs"
    common = dict(progress=progress, seed=seed, device=device)  # (the linear closed form runs on the CPU)
    linear = dict(model="linear", solver="closed-form", temperature=temperature)  # defaults: measured in issue 11
    stage("linear potential: energy least squares", runs / "linear-mse" / "model.pt",
          lambda: train(train_data, out=runs / "linear-mse", objective="energy", **linear, **common))
    stage("linear potential: Fisher optimum (closed form)", runs / "linear-fisher" / "model.pt",
          lambda: train(train_data, out=runs / "linear-fisher", objective="fisher", **linear, **common))
    stage("SchNet: energy MSE", runs / "schnet-mse" / "model.pt",
          lambda: train(train_data, out=runs / "schnet-mse", model="schnet", config=SCHNET, objective="energy",
                        epochs=100000, batch_size=16, lr=1e-3, patience=1000, max_minutes=size.mse_minutes,
                        **common))
    stage("SchNet: Fisher fine-tuning of the energy-MSE model", runs / "schnet-fisher" / "model.pt",
          lambda: finetune(runs / "schnet-mse", data=train_data, out=runs / "schnet-fisher", objective="fisher",
                           temperature=temperature, epochs=100000, lr=3e-4, batch_size=16, patience=1000,
                           max_minutes=size.fisher_minutes, **common))
    stage("SchNet: denoising score matching from positions alone", runs / "schnet-dsm" / "model.pt",
          lambda: train(positions_only, out=runs / "schnet-dsm", model="schnet", config=SCHNET, objective="dsm",
                        temperature=temperature, epochs=100000, batch_size=16, lr=1e-3,
                        patience=1000, max_minutes=size.dsm_minutes, **common))
    names = ["linear-mse", "linear-fisher", "schnet-mse", "schnet-fisher", "schnet-dsm"]
    start = time.perf_counter()
    if progress:
        print(f"[demo] MD: {size.replicas} replicas × {size.time_ps} ps per model, and the report ...", flush=True)
    result = compare([runs / n for n in names], test_data, out=out / "report", names=names, simulate=True,
                     start=test_data, temperature=temperature, replicas=size.replicas, time=size.time_ps,
                     timestep=size.timestep_fs, seed=seed, progress=progress, device=device)
    stages.append(["simulate every model, compare", "done", time.perf_counter() - start])
    result["stages"] = stages
    return result


def format_stages(stages: list[list]) -> str:
    rows = [[name, status, f"{seconds:.1f}"] for name, status, seconds in stages]
    rows.append(["total", "", f"{sum(s[2] for s in stages):.1f}"])
    return format_table(rows, header=["stage", "status", "seconds"], title="Demo stages")
