"""A GFlowNet run judged and drawn: exact evaluation plus the plots (training curves, target
against learned distribution for two-dimensional state spaces, example Tetris boards), written into
the run directory. ``boltzmatch gflownet evaluate`` and the desktop app call :func:`evaluate_run`."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from .evaluate import evaluate_exact, exact_distributions
from .train import load_gflownet, train_gflownet


def train_and_evaluate(out: str | Path, **options) -> str:
    """Train a GFlowNet into ``out`` (``options``: those of :func:`~.train.train_gflownet`), then
    :func:`evaluate_run` it with its plots; returns ``out``."""
    train_gflownet(out=out, **options)
    evaluate_run(out)
    return str(out)


def evaluate_run(run_dir: str | Path, *, samples: int = 10_000, seed: int = 0, plots: bool = True) -> dict:
    """Exact judgement of the run (see :func:`~.evaluate.evaluate_exact`, with ``samples`` for the
    empirical L1) plus ``run_dir``, ``env`` and ``loss``; with ``plots``, l1.png, log_z.png,
    distribution.png (2-D state spaces) and boards.png (Tetris) in the run directory."""
    from ..analysis import plots as draw

    if samples < 0:
        raise BoltzmatchError(f"--samples must be ≥ 0 (0: no empirical L1), got {samples}")
    env, model, settings = load_gflownet(run_dir)
    distributions = exact_distributions(env, model)  # one pass over the state DAG for numbers and maps
    result = evaluate_exact(env, model, settings.loss, n_samples=samples, seed=seed, distributions=distributions)
    run = Path(run_dir)
    if plots:
        rows = rd.read_metrics(run)
        if rows and "l1_exact" in rows[0]:
            x = [float(r["trajectories"]) for r in rows]
            draw.overlay_plot({"exact L1": (x, [float(r["l1_exact"]) for r in rows])}, run / "l1.png",
                              xlabel="trajectories", ylabel="Σ|P_T − R/Z|", title="exact L1 during training")
            draw.overlay_plot({"reference": (x, [float(r["log_z_true"]) for r in rows]),
                               "model": (x, [float(r["log_z"]) for r in rows])}, run / "log_z.png",
                              xlabel="trajectories", ylabel="log Z", title="log Z during training")
        if env.name == "tetris":  # example boards the policy builds
            from .sampler import sample_trajectories

            generator = torch.Generator(device=torch.get_default_device()).manual_seed(seed)
            boards = sample_trajectories(env, model, 16, generator).terminal
            draw.image_grid(boards.flatten(1).float().cpu().numpy() * 2 - 1, run / "boards.png",
                            shape=(env.height, env.width), title="sampled Tetris boards", columns=8)
        maps = _distribution_maps(env, distributions[0], distributions[1])
        if maps is not None:
            title, labels, target, p_model = maps
            draw.heatmap_panels({"target R/Z": target, "GFlowNet P_T": p_model}, run / "distribution.png",
                                title=f"{title}, {settings.loss}", labels=labels)
    return {"run_dir": str(run), "env": settings.env, "loss": settings.loss, **result}


def _distribution_maps(env, p_model: torch.Tensor, target: torch.Tensor):
    """(title, axis labels, target, model) as 2-D arrays for two-dimensional state spaces, else None."""
    if getattr(env, "ndim", None) != 2 and getattr(env, "k", None) != 2:
        return None
    if env.name == "torsions":
        names = ("φ", "ψ") if env.molecule == "alanine-dipeptide" else tuple(
            "torsion " + "-".join(map(str, t)) for t in env.torsions)
        return (f"{env.molecule} {names[0]} / {names[1]}, {env.bins}×{env.bins} bins, {env.temperature:g} K",
                (f"{names[0]} bin", f"{names[1]} bin"),
                env.grid(target), env.grid(p_model))
    shape = (env.height, env.height)
    return (f"hypergrid {env.height}×{env.height}", ("x₁", "x₂"), target.reshape(shape).cpu().numpy(),
            p_model.reshape(shape).cpu().numpy())
