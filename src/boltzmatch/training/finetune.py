"""Fine-tuning: start from a trained run, keep its normalisation, train with another objective."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BoltzmatchError
from . import run_dir as rd
from .trainer import TrainSettings, _run


def finetune(
    run_dir: str | Path,
    *,
    data: str | Path,
    out: str | Path,
    objective: str = "fisher",
    temperature: float | None = None,
    energy_weight: float | None = None,
    force_weight: float | None = None,
    sigma: Sequence[float] | None = None,
    n_probes: int = 1,
    probe: str = "rademacher",
    antithetic: bool | None = None,
    huber_delta: float | None = None,
    freeze: str | None = None,
    epochs: int = 50,
    lr: float = 1e-4,
    batch_size: int = 32,
    schedule: str = "plateau",
    patience: int = 20,
    ema_decay: float | None = 0.99,
    clip: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_minutes: float | None = None,
    progress: bool = True,
    data_options: dict | None = None,
    cd_options: dict | None = None,
) -> dict:
    """Fine-tune the model of ``run_dir`` on ``data`` with ``objective`` and write ``out``.

    SAMPLES may hold positions only for ``ism``, ``ssm``, ``dsm`` and ``cd`` (``cd_options`` as in
    :func:`~boltzmatch.training.train`). The new run's
    ``config.yaml`` records ``parent: run_dir``; parameters whose names match the glob
    ``freeze`` stay fixed. ``temperature`` in K, ``sigma`` in Å (dsm; default derived from
    the data, antithetic pairs on by default), ``huber_delta`` in eV/Å (fisher: force residuals beyond it
    weigh linearly), ``lr`` for Adam.
    """
    parent = rd.read_config(run_dir)
    if Path(out).resolve() == Path(run_dir).resolve():
        raise BoltzmatchError(f"{out}: fine-tuning writes a new run directory; choose another --out")
    # as in train: supervised losses weigh energy 1 and forces 100; score objectives add supervised
    # terms only when asked
    supervised = objective in ("energy", "forces", "energy-forces")
    if energy_weight is None:
        energy_weight = 1.0 if supervised else 0.0
    if force_weight is None:
        force_weight = 100.0 if supervised else 0.0
    settings = TrainSettings(
        data=str(data), objective=objective, temperature=temperature, energy_weight=energy_weight,
        force_weight=force_weight, sigma=None if sigma is None else list(sigma), n_probes=n_probes, probe=probe,
        antithetic=antithetic, huber_delta=huber_delta,
        epochs=epochs,
        batch_size=batch_size, lr=lr, schedule=schedule, patience=patience, ema_decay=ema_decay, clip=clip,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, max_minutes=max_minutes,
        data_options=data_options or {}, parent=str(run_dir), freeze=freeze, cd_options=dict(cd_options or {}),
    )
    return _run(settings, dict(parent["model"]), Path(out), resume=False, progress=progress)
