"""``boltzmatch finetune RUN_DIR``: continue a trained model with a score objective."""

from __future__ import annotations

import argparse

from .common import add_data_options, add_device_options, add_objective_options, cd_options, data_kwargs, device_kwargs

HELP = "fine-tune a trained run with fisher, ism, ssm or dsm (positions alone suffice for ism/ssm/dsm)"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("finetune", help=HELP, description=HELP)
    p.add_argument("run_dir", help="the trained run to start from")
    p.add_argument("--data", required=True, help="samples (Boltzmann-distributed frames)")
    add_objective_options(p, default="fisher")
    p.add_argument("--energy-weight", type=float,
                   help="weight of the per-atom energy MSE (eV²); default 1 for supervised objectives, else 0")
    p.add_argument("--force-weight", type=float,
                   help="weight of the force MSE (eV²/Å²); default 100 for supervised objectives, else 0")
    p.add_argument("--stress-weight", type=float,
                   help="weight of the stress term of crystals, the virial-per-atom MSE (eV²/atom²; objectives "
                        "energy, forces, energy-forces, fisher and fisher-cd); default 10 where every structure is "
                        "a crystal with a stress label, else 0")
    p.add_argument("--freeze", help="glob of parameter names kept fixed, e.g. 'embedding.*'")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--val-data", metavar="FILE",
                   help="structure file whose frames validate instead of a --val-fraction share of DATA (best "
                        "model, learning-rate schedule, the closed form's ridge): a separately seeded "
                        "trajectory keeps frames femtoseconds from training ones out of validation")
    p.add_argument("--element-energies", metavar="SOURCE", default="auto",
                   help="per-element energies for what neither the parent's nor these frames' compositions fix of "
                        "the energy zero: xtb or emt (isolated atoms by that method), values in eV (e.g. "
                        "H=-10.71,C=-48.85,O=-102.57), least-squares, or auto (default: the parent's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--out", required=True, help="the new run directory")
    p.add_argument("--quiet", action="store_true")
    add_data_options(p)
    add_device_options(p, precision=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..training import finetune, format_train_summary

    summary = finetune(
        args.run_dir, data=args.data, out=args.out, objective=args.objective, temperature=args.temperature,
        energy_weight=args.energy_weight, force_weight=args.force_weight, stress_weight=args.stress_weight,
        sigma=args.sigma, n_probes=args.n_probes,
        antithetic=args.antithetic, huber_delta=args.huber_delta,
        probe=args.probe, freeze=args.freeze, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, val_data=args.val_data,
        seed=args.seed, element_energies=args.element_energies,
        max_minutes=args.max_minutes, progress=not args.quiet,
        data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
        cd_options=cd_options(args), **device_kwargs(args),
    )
    print(format_train_summary(summary))
    return 0
