"""Reference labelling on Dask against a plain loop (issue 41): throughput with 1 and 2 workers, cost per task.

For each molecule (GFN2-xTB through tblite, one thread per process: ethanol ≈ 2 ms a call, aspirin ≈ 11 ms),
N frames displaced 0.05 Å from the equilibrium structure are labelled three ways, round robin, ``--rounds``
rounds (default 5) after an untimed warm-up, medians reported:

- plain: a loop in this process over :func:`boltzmatch.data.labelling.label_texts`, one frame at a time
  (what ``refine`` does with ``--workers 1``);
- dask-1: :func:`~boltzmatch.data.labelling.label_frames` on a running 1-worker LocalCluster (the cost of
  Dask itself: submitting, shipping frames and texts, the journal's ordered appends), per task against the
  plain loop;
- dask-2: the same on a 2-worker LocalCluster (processes, one thread each): throughput against the plain loop.

The clusters are started before the clock runs (``refine`` starts one per labelling round: its start-up,
≈ 3 s here, is reported beside). Goals: dask-2 ≥ 1.7 × plain on this 2-core machine; dask-1's cost per
task ≤ 5 % for ≈ 10 ms calls (aspirin).

Usage: python benchmarks/labels_at_scale.py [--frames N] [--rounds R]
Writes benchmarks/results/labels_at_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import cell, spread, write_results

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the plain loop computes on one thread, as each worker does

SYSTEMS = ("ethanol", "aspirin")


def frames_of(system: str, n: int) -> list:
    from boltzmatch.data.systems import build_system

    rng = np.random.default_rng(0)
    base = build_system(system)
    frames = []
    for _ in range(n):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    return frames


def plain(frames: list, folder: Path) -> float:
    from boltzmatch.data.labelling import label_texts

    start = time.perf_counter()
    with open(folder / "plain.xyz", "w") as handle:
        for atoms in frames:
            handle.write(label_texts([("xtb", atoms)])[0])
            handle.flush()
    return time.perf_counter() - start


def on_cluster(frames: list, folder: Path, address: str, name: str) -> float:
    from boltzmatch.data.labelling import label_frames

    path = folder / f"{name}.xyz"
    start = time.perf_counter()
    label_frames(frames, path, "xtb", scheduler=address, progress=False)
    elapsed = time.perf_counter() - start
    if path.read_bytes() != (folder / "plain.xyz").read_bytes():
        raise SystemExit(f"{name}: labels differ from the plain loop's")
    path.unlink()
    return elapsed


def main() -> None:
    import logging

    from distributed import LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="frames labelled per way and round (default 400)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    clusters = {}
    for workers in (1, 2):
        clusters[workers] = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR,
                                         env={"OMP_NUM_THREADS": "1"})
    startup = (time.perf_counter() - start) / 2
    results, rows = {"settings": {"frames": args.frames, "rounds": args.rounds, "cluster_startup_s": startup}}, []
    folder = Path(tempfile.mkdtemp(prefix="labels_at_scale."))
    try:
        plain(frames_of(SYSTEMS[0], 8), folder)  # warm-up, not timed: each worker imports tblite on its first task
        for workers in (1, 2):
            on_cluster(frames_of(SYSTEMS[0], 8), folder, clusters[workers].scheduler_address, f"warm-{workers}")
        for system in SYSTEMS:
            frames = frames_of(system, args.frames)
            times = {"plain": [], "dask-1": [], "dask-2": []}
            for round_ in range(args.rounds):
                times["plain"].append(plain(frames, folder))
                for workers in (1, 2):
                    times[f"dask-{workers}"].append(on_cluster(frames, folder, clusters[workers].scheduler_address,
                                                               f"dask-{workers}"))
                print(f"{system} round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
            per_call = [1000 * t / args.frames for t in times["plain"]]
            overhead = [1000 * (d - p) / args.frames for d, p in zip(times["dask-1"], times["plain"])]
            relative = [100 * (d - p) / p for d, p in zip(times["dask-1"], times["plain"])]
            speedup = [p / d for d, p in zip(times["dask-2"], times["plain"])]
            results[system] = {"seconds": {k: spread(v) for k, v in times.items()},
                               "plain_ms_per_call": spread(per_call), "dask1_overhead_ms_per_task": spread(overhead),
                               "dask1_overhead_percent": spread(relative), "dask2_speedup": spread(speedup)}
            rows.append([system, len(frames[0]), cell(spread(per_call), 2), cell(spread(overhead), 3),
                         cell(spread(relative), 1), cell(spread(speedup), 2)])
    finally:
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(folder, ignore_errors=True)
    aspirin = results["aspirin"]
    results["goals"] = {"dask2_at_least_1.7x": {s: results[s]["dask2_speedup"]["median"] >= 1.7 for s in SYSTEMS},
                        "dask1_overhead_at_most_5_percent_aspirin": aspirin["dask1_overhead_percent"]["median"] <= 5}
    print(write_results("labels_at_scale", results, rows,
                        ["molecule (GFN2-xTB)", "atoms", "plain ms/call", "dask-1 extra ms/task", "dask-1 extra %",
                         "dask-2 speed-up"]))
    print(f"cluster start-up (not timed above): {startup:.1f} s; goals: {results['goals']}")


if __name__ == "__main__":
    main()
