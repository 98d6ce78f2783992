"""``boltzmatch train DATA``: train an energy model; ``--resume RUN_DIR`` continues a killed run."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .common import (
    add_alias,
    add_data_options,
    add_device_options,
    add_objective_options,
    cd_options,
    data_kwargs,
    device_kwargs,
)

HELP = "train an energy model (schnet, painn, mlp, linear, or a MACE architecture) on energies and/or forces"


def add_parser(subparsers) -> None:
    from ..models.registry import MODELS
    from ..objectives.supervised import LOSSES
    from ..training.trainer import SCHEDULES

    p = subparsers.add_parser("train", help=HELP, description=HELP)
    p.add_argument("data", nargs="?", help="training structures with labels (omit with --resume)")
    p.add_argument("--model", choices=list(MODELS), default="schnet")
    p.add_argument("--config", help="model YAML (name, cutoff, n_interactions, n_features, n_rbf, dtype, ...)")
    add_objective_options(p, default="energy-forces")
    add_alias(p, "--loss", "--objective", choices=LOSSES)
    p.add_argument("--solver", choices=["iterative", "closed-form"], default="iterative",
                   help="closed-form: exact one-pass fit of the linear potential (objective energy, fisher, ism)")
    p.add_argument("--ridge", type=_ridge, default="auto",
                   help="closed-form ridge relative to the unit diagonal of the scaled system, or 'auto' (default): "
                        "the value with the lowest objective on the validation split")
    p.add_argument("--prior", choices=["bonded"],
                   help="add bonds, angles, impropers and torsions fitted to the frames by Boltzmann inversion at "
                        "--temperature, and walls beyond the pair distances they filled (one molecule); the network "
                        "learns the rest. Keeps positions-only models out of wells the data never visits")
    p.add_argument("--energy-weight", type=float,
                   help="weight of the per-atom energy MSE (eV²); default 1, or 0 with a score objective")
    p.add_argument("--force-weight", type=float,
                   help="weight of the force MSE (eV²/Å²); default 100, or 0 with a score objective")
    p.add_argument("--stress-weight", type=float,
                   help="weight of the stress term of crystals, the virial-per-atom MSE (eV²/atom²; objectives "
                        "energy, forces, energy-forces, fisher and fisher-cd) over the structures that carry a "
                        "stress; default 10 where some crystal carries one, else 0")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--schedule", choices=SCHEDULES, default="plateau")
    p.add_argument("--patience", type=int, default=20, help="early stopping: epochs without improvement")
    p.add_argument("--ema-decay", type=_ema_decay, default="auto",
                   help="decay per step of the weights' moving average: auto (0.99 up to batch 32, 0.99^(batch/32) "
                        "above: the same horizon in structures), a number, or 0 (off)")
    p.add_argument("--clip", type=float, default=0.0, help="gradient-norm clipping limit (default 0: off)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--split-method", choices=["random", "contiguous"], default="random")
    p.add_argument("--split-file", help="npz/json with train, val, test indices")
    p.add_argument("--val-data", metavar="FILE",
                   help="structure file whose frames validate instead of a --val-fraction share of DATA (best "
                        "model, learning-rate schedule, the closed form's ridge): a separately seeded "
                        "trajectory keeps frames femtoseconds from training ones out of validation")
    p.add_argument("--element-energies", metavar="SOURCE", default="auto",
                   help="per-element energies for what the training compositions leave open of the energy zero "
                        "(one molecule's frames fix only its own), as MACE's E0s: xtb or emt (isolated atoms by "
                        "that method), values in eV (e.g. H=-10.71,C=-48.85,O=-102.57), least-squares, or auto "
                        "(default: the isolated atoms of the method the frames name, as generate records it, else "
                        "least-squares)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, help="stop after the epoch that crosses this wall time")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_options(p, precision=True)
    add_data_options(p)
    p.set_defaults(run=run)


def _auto_or_number(expected: str, allowed: Callable[[float], bool]) -> Callable[[str], float | str]:
    """An argparse type: ``auto``, or a number that ``allowed`` accepts; else the error says ``expected``."""

    def parse(text: str) -> float | str:
        if text == "auto":
            return text
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not allowed(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_ridge = _auto_or_number("'auto' or a number ≥ 0", lambda value: value >= 0)
_ema_decay = _auto_or_number("'auto', 0 (off) or a number in (0, 1)", lambda value: 0 <= value < 1)


def run(args: argparse.Namespace) -> int:
    from ..errors import BoltzmatchError
    from ..training import format_train_summary, train

    if args.resume:
        summary = train(None, out=args.resume, resume=True, progress=not args.quiet, **device_kwargs(args))
    else:
        if not args.data or not args.out:
            raise BoltzmatchError("train needs DATA and --out RUN_DIR (or --resume RUN_DIR)")
        summary = train(
            args.data, out=args.out, model=args.model, config=args.config,
            energy_weight=args.energy_weight, force_weight=args.force_weight,
            stress_weight=args.stress_weight, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, schedule=args.schedule, patience=args.patience,
            ema_decay=args.ema_decay or None, clip=args.clip or None, val_fraction=args.val_fraction,
            test_fraction=args.test_fraction, split_method=args.split_method, split_file=args.split_file,
            val_data=args.val_data, seed=args.seed, max_minutes=args.max_minutes, progress=not args.quiet,
            objective=args.objective,
            temperature=args.temperature, sigma=args.sigma, n_probes=args.n_probes, probe=args.probe,
            antithetic=args.antithetic, huber_delta=args.huber_delta,
            solver=args.solver, ridge=args.ridge,
            data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
            cd_options=cd_options(args), prior=args.prior, element_energies=args.element_energies,
            **device_kwargs(args),
        )
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(format_train_summary(summary))
    return 0
