"""Which MD frames a ``refine`` round labels: before collapses and where the model is uncertain
(``failures``), or uniformly (``uniform``, plain active learning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import BoltzmatchError


def candidates(folder: Path, model, train: list[Atoms], settings, number: int) -> list[Atoms]:
    """The frames to label this round (written once to ``candidates.xyz``, then read back)."""
    from ase.io import read

    path = folder / "candidates.xyz"
    if path.exists():
        return read(path, index=":")
    from ..simulate.output import read_samples

    summary = json.loads((folder / "md" / "summary.json").read_text())
    trajectories = read_samples(folder / "md")
    pool = [(r, i) for r, frames in enumerate(trajectories) for i in range(len(frames))]
    if not pool:
        raise BoltzmatchError(f"{folder / 'md'}: the simulation wrote no frames to label")
    chosen: list[tuple[int, int]] = []
    if settings.selection == "uniform":
        rng = np.random.default_rng(settings.seed + number)
        picks = rng.choice(len(pool), size=min(settings.label_budget, len(pool)), replace=False)
        chosen = [pool[k] for k in sorted(picks)]
        return _write_candidates(path, chosen, trajectories, settings)
    # half the budget from the stretch before each collapse, round robin over the collapsed replicas
    stretches = [[(r, i) for i in range(max(0, len(trajectories[r]) - settings.window), len(trajectories[r]))][::-1]
                 for r, collapsed in enumerate(summary["collapsed"]) if collapsed and r < len(trajectories)]
    half = settings.label_budget // 2 if any(stretches) else 0
    while len(chosen) < half and any(stretches):
        for stretch in stretches:
            if stretch and len(chosen) < half:
                chosen.append(stretch.pop(0))
    # the rest where the uncertainty signal is highest
    taken = set(chosen)
    rest = [key for key in pool if key not in taken]
    frames = [trajectories[r][i] for r, i in rest]
    score = (_disagreement(model, settings.run_dir, frames) if number > 0 else _bond_deviation(frames, train))
    cap = max(1, -(-settings.label_budget // REPLICA_SHARE))
    chosen += top_per_replica(rest, score, settings.label_budget - len(chosen), cap)
    return _write_candidates(path, chosen, trajectories, settings)


REPLICA_SHARE = 8
"""At most 1/REPLICA_SHARE of a round's labels come from the uncertainty ranking of one replica."""


def top_per_replica(keys: list[tuple[int, int]], score: np.ndarray, n: int, cap: int) -> list[tuple[int, int]]:
    """The ``n`` highest-scoring ``(replica, frame)`` keys, at most ``cap`` from one replica.

    One replica that wandered somewhere odd otherwise fills the whole budget with near-copies of one
    failure (seen on aspirin: all 64 of a round's labels from two replicas). Where the cap leaves
    fewer than ``n``, the best of the rest fill up.
    """
    order = np.argsort(-np.asarray(score), kind="stable")
    taken: list[int] = []
    per_replica: dict[int, int] = {}
    for k in order:
        if len(taken) == n:
            break
        replica = keys[k][0]
        if per_replica.get(replica, 0) < cap:
            taken.append(int(k))
            per_replica[replica] = per_replica.get(replica, 0) + 1
    picked = set(taken)
    left = [int(k) for k in order if int(k) not in picked]
    taken += left[: n - len(taken)]
    return [keys[k] for k in taken]


def _write_candidates(path: Path, chosen: list[tuple[int, int]], trajectories: list[list[Atoms]],
                      settings) -> list[Atoms]:
    from ase.io import write

    picked = []
    for r, i in chosen:
        atoms = trajectories[r][i].copy()
        atoms.calc = None
        atoms.info = {"replica": r, "time_ps": trajectories[r][i].info.get("time_ps"),
                      "temperature": settings.temperature}
        picked.append(atoms)
    from ..utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        write(tmp, picked, format="extxyz")
    return picked


def _bond_deviation(frames: list[Atoms], train: list[Atoms]) -> np.ndarray:
    """Largest bond-length deviation (Å) of each frame from the training frames' mean bond lengths."""
    from ..data.geometry import bond_lengths
    from ..simulate.stability import BondReference

    reference = BondReference(train, "training data")
    out = np.zeros(len(frames))
    for n, atoms in enumerate(frames):
        bonds, mean = reference.for_structure(atoms)
        out[n] = np.abs(bond_lengths([atoms], bonds)[0] - mean).max() if len(mean) else 0.0
    return out


def _disagreement(model, parent, frames: list[Atoms]) -> np.ndarray:
    """Max over atoms of |F_model − F_parent| (eV/Å) per frame."""
    from ..analysis.evaluate import predict_frames

    if not frames:
        return np.zeros(0)
    _, forces = predict_frames(model, frames)
    _, parent_forces = predict_frames(parent, frames)
    per_atom = np.linalg.norm(forces - parent_forces, axis=1)
    counts = [len(a) for a in frames]
    return np.array([chunk.max() for chunk in np.split(per_atom, np.cumsum(counts)[:-1])])
