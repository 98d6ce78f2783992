"""Fine-tuning: start from a trained run, keep its normalisation and prior, train with another objective."""

from __future__ import annotations

from pathlib import Path

from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from .trainer import train

#: train() options that fine-tuning decides itself (the model, its prior and solver are the parent's)
_PARENT_DECIDES = ("model", "config", "solver", "ridge", "prior", "parent", "resume")


def finetune(run_dir: str | Path, *, data: str | Path, out: str | Path, objective: str = "fisher", epochs: int = 50,
             lr: float = 1e-4, **options) -> dict:
    """Fine-tune the model of ``run_dir`` on ``data`` with ``objective`` and write ``out``; returns the summary.

    SAMPLES may hold positions only for ``ism``, ``ssm``, ``dsm`` and ``cd``. The new run's
    ``config.yaml`` records ``parent: run_dir``; every other option is :func:`~boltzmatch.training.train`'s:
    ``freeze`` (a glob of parameter names kept fixed), ``temperature`` in K, ``sigma`` in Å (dsm; default
    derived from the data, antithetic pairs on by default), ``huber_delta`` in eV/Å (fisher: force
    residuals beyond it weigh linearly), ``energy_weight``/``force_weight``/``stress_weight``, ``cd_options``,
    ``batch_size``, ``schedule``, ``patience``, ``ema_decay``, ``clip``, the split, ``seed``,
    ``max_minutes``, ``progress``, ``data_options``, ``element_energies`` (default ``auto``: the parent's; another
    source or values settle what neither the parent's compositions nor these frames' fix of the energy zero).
    """
    fixed = sorted(set(options) & set(_PARENT_DECIDES))
    if fixed:
        raise TypeError(f"finetune() takes its {', '.join(fixed)} from the parent run")
    rd.read_config(run_dir)  # a one-line error for a folder that is not a run
    if Path(out).resolve() == Path(run_dir).resolve():
        raise BoltzmatchError(f"{out}: fine-tuning writes a new run directory; choose another --out")
    return train(data, out=out, parent=run_dir, objective=objective, epochs=epochs, lr=lr, **options)
