"""Score-based diffusion on the positions of a molecule with a conservative, noise-conditional
energy model (Arts et al. 2023, "Two for one: diffusion models and force fields for coarse-grained
molecular dynamics").

The score network is an :class:`~boltzmatch.models.base.EnergyModel` (SchNet or PaiNN) built with
``noise_levels`` (:mod:`boltzmatch.models.noise`): s_θ(x, σ) = βF_θ(x; σ), conservative at every σ.
Training is denoising score matching (the ``dsm`` objective, antithetic pairs) over a geometric
ladder of noise levels σ_min … σ_max (the VE SDE's discretisation, as in NCSN), σ_min being the
data's own dsm level (⅛ of the narrowest bond's thermal width). The run is an ordinary run
directory: ``simulate``, ``evaluate`` and ``compare`` use the model at σ_min, its small-noise
force field. :func:`sample_molecules` draws structures by annealed Langevin down the ladder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ..data import read_structures
from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces, model_dtype
from ..objectives import dsm_sigma_from_data, structure_beta
from ..runs import run_dir as rd
from ..simulate.langevin import annealed_langevin

MOLECULAR_DEFAULTS = {"model": "schnet", "levels": 8, "sigma_max": 0.3, "sigma_min": None}
SCHNET = {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20}


def noise_ladder(sigma_min: float, sigma_max: float, levels: int) -> list[float]:
    """``levels`` noise levels (Å), geometric from σ_max down to σ_min."""
    if not 0 < sigma_min < sigma_max or levels < 2:
        raise BoltzmatchError(f"noise ladder needs 0 < sigma_min < sigma_max and ≥ 2 levels, got "
                              f"{sigma_min}, {sigma_max}, {levels}")
    return [float(v) for v in np.geomspace(sigma_max, sigma_min, levels)]


def train_molecular_diffusion(data: str | Path, *, out: str | Path, temperature: float | None = None,
                              epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
                              seed: int = 0, options: dict | None = None, max_minutes: float | None = None,
                              progress: bool = True, device: str = "auto") -> dict:
    """Train a noise-conditional energy model on the positions in ``data`` (extxyz, db, …); returns
    the training summary. ``options``: ``model`` (schnet | painn), ``levels``, ``sigma_max`` (Å),
    ``sigma_min`` (Å; default from the data), and any model config key."""
    from ..training import train

    options = {**MOLECULAR_DEFAULTS, **(options or {})}
    model = options.pop("model")
    levels, sigma_max, sigma_min = options.pop("levels"), options.pop("sigma_max"), options.pop("sigma_min")
    if model not in ("schnet", "painn"):
        raise BoltzmatchError(f"diffusion on molecules needs a noise-conditional model: schnet or painn, got {model!r}")
    if sigma_min is None:
        sigma_min = dsm_sigma_from_data(read_structures(data))
    ladder = noise_ladder(float(sigma_min), float(sigma_max), int(levels))
    config = {**(SCHNET if model == "schnet" else {}), **options, "noise_levels": [ladder[-1], ladder[0]]}
    return train(data, out=out, model=model, config=config, objective="dsm", sigma=ladder, antithetic=True,
                 temperature=temperature, epochs=epochs or 30, batch_size=batch_size or 32, lr=lr or 1e-3,
                 seed=seed, max_minutes=max_minutes, progress=progress, device=device)


def sample_molecules(run_dir: str | Path, n: int, *, seed: int = 0, steps: int | None = None,
                     start: list[Atoms] | None = None, step_fraction: float = 0.05) -> list[Atoms]:
    """``n`` structures by annealed Langevin down the run's noise ladder, ``steps`` per level (default 20).

    Chains start from training frames (or ``start``) perturbed by σ_max noise, and at level σ take
    steps x ← x + α s + √(2α) z with s = βF(x; σ) and α = ``step_fraction``·σ²: each step moves by a
    fraction of the current noise width.
    """
    config = rd.read_config(run_dir)
    training = config.get("training") or {}
    ladder = training.get("sigma") or []
    if not config["model"].get("noise_levels") or len(ladder) < 2:
        raise BoltzmatchError(f"{run_dir}: not a molecular diffusion run (no noise-conditional model); "
                              "sample energy models with `boltzmatch simulate`")
    model = rd.load(run_dir)
    dtype = model_dtype(model)
    frames = start or read_structures(training["data"], **training.get("data_options", {}))
    rng = np.random.default_rng(seed)
    chosen = [frames[i] for i in rng.choice(len(frames), n, replace=len(frames) < n)]
    batch = AtomsBatch.from_atoms(chosen, dtype=dtype)
    beta = structure_beta(batch, training.get("temperature"))
    beta_atoms = beta[batch.structure_index][:, None]
    generator = torch.Generator().manual_seed(seed)
    x = batch.positions + ladder[0] * torch.randn(batch.positions.shape, generator=generator, dtype=dtype)

    def score(x: torch.Tensor, sigma: float) -> torch.Tensor:
        level = torch.full((batch.n_structures,), sigma, dtype=dtype)
        noisy = replace(batch.with_positions(x), noise_level=level)
        return beta_atoms * energy_and_forces(model, noisy)[1].detach()

    x = annealed_langevin(score, x, sorted(ladder, reverse=True), steps_per_level=steps or 20,
                          step_size=lambda sigma, _score, _noise: step_fraction * sigma**2, generator=generator)
    out = batch.with_positions(x).to_atoms()
    return out
