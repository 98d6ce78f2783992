"""Loss-landscape speed: a 41×41 Fisher-loss landscape of SchNet on 200 xTB ethanol frames.

Issue 6's goal: at most 3 minutes on a 2-core CPU. Also times one grid point evaluated in the
default loop against torch.func.vmap over chunks of points (the peer inside boltzmatch), to keep the
choice of the loop as default honest.

Usage: python benchmarks/landscape_speed.py [--grid 41] [--frames 200]
Writes benchmarks/results/landscape_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from common import ethanol_data, trained_schnet, write_results

import boltzmatch
from boltzmatch.analysis.landscape import (
    energy_model_loss,
    filter_normalized_direction,
    grid_losses,
    landscape,
    trainable_parameters,
)
from boltzmatch.data import read_structures
from boltzmatch.data.packed import PackedStructures


def per_point_seconds(run, frames, vectorize: bool, points: int = 16) -> float:
    model = boltzmatch.load(run)
    for p in model.parameters():
        p.requires_grad_(False)
    batch = PackedStructures(frames, dtype=torch.float32).full
    loss = energy_model_loss("energy", batch, temperature=500.0)  # vmap takes losses without forces
    base = trainable_parameters(model)
    d = filter_normalized_direction(base, torch.Generator().manual_seed(0))
    xs = np.linspace(-1, 1, points)
    grid_losses(model, loss, base, d, None, xs[:2], None, progress=False, vectorize=vectorize, chunk=2)  # warm-up
    start = time.perf_counter()
    grid_losses(model, loss, base, d, None, xs, None, progress=False, vectorize=vectorize, chunk=points)
    return (time.perf_counter() - start) / points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=41)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    data = ethanol_data("ethanol500K_train1000", frames=1100, seed=1)
    run = trained_schnet(data)
    frames = read_structures(data)[: args.frames]
    loop = per_point_seconds(run, frames[:50], vectorize=False)
    vmapped = per_point_seconds(run, frames[:50], vectorize=True)
    with tempfile.TemporaryDirectory() as tmp:
        subset = f"{tmp}/frames.xyz"
        boltzmatch.write_structures(subset, frames)
        start = time.perf_counter()
        r = landscape(run, subset, out=f"{tmp}/ls", objective="fisher", temperature=500.0, grid=args.grid,
                      max_frames=args.frames, progress=True)
        seconds = time.perf_counter() - start
    results = {"grid": args.grid, "frames": args.frames, "seconds": seconds, "goal_seconds": 180.0,
               "meets_goal": seconds <= 180.0, "sharpness": r["sharpness"], "loss_at_model": r["loss_at_model"],
               "per_point_seconds_energy_loss_50_frames": {"loop": loop, "vmap": vmapped}}
    rows = [[f"{args.grid}×{args.grid} SchNet fisher landscape, {args.frames} frames", f"{seconds:.1f}", 180,
             seconds <= 180],
            ["one point, energy loss, 50 frames, loop (s)", f"{loop:.4f}", "", ""],
            ["one point, energy loss, 50 frames, vmap (s)", f"{vmapped:.4f}", "", ""]]
    print(write_results("landscape_speed", results, rows, ["measurement", "seconds", "goal", "met"]))


if __name__ == "__main__":
    main()
