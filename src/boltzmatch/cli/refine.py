"""``boltzmatch refine RUN_DIR --data TRAIN``: simulate, label frames of the model's MD, Fisher-fine-tune, repeat."""

from __future__ import annotations

import argparse

from .common import add_alias, add_cluster_options, add_device_options, device_kwargs

HELP = ("close the loop: MD with the model, label frames of its trajectories (or before collapses), fine-tune, "
        "repeat")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("refine", help=HELP, description=HELP + ". Resumes where a killed run stopped.")
    p.add_argument("run_dir", help="the run (or MACE/SchNetPack/NequIP model file) to refine")
    p.add_argument("--data", required=True, help="the training frames (MD starts from them; labels join them)")
    p.add_argument("--calculator", choices=["xtb", "emt", "openmm"], default="xtb",
                   help="the reference method that labels frames (default xtb), as in generate")
    add_alias(p, "--reference", "--calculator", choices=["xtb", "emt", "openmm"])
    p.add_argument("--temperature", type=float, default=500.0, help="MD and Fisher temperature, K (default 500)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--replicas", type=int, default=32)
    p.add_argument("--time", type=float, default=10.0, help="ps per replica per round (default 10)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--label-budget", type=int, default=64, help="reference calls per round (default 64)")
    p.add_argument("--window", type=int, default=5, help="frames before each collapse to label from (default 5)")
    p.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs per round (default 30)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-minutes", type=float, help="fine-tuning wall-time budget per round")
    p.add_argument("--test", help="held-out labelled frames: force MAE per round")
    p.add_argument("--selection", choices=["failures", "uniform", "none"], default="uniform",
                   help="frames to label: drawn uniformly from the trajectories (default), before collapses and "
                        "where the model is unsure (failures), or none (no reference call: the model's MD frames "
                        "enter fisher-cd as negatives)")
    p.add_argument("--objective", choices=["fisher", "energy-forces", "fisher-cd"],
                   help="fine-tuning objective on the training frames plus every label (default fisher; fisher-cd, "
                        "the Fisher divergence plus contrastive divergence against the model's MD frames, with "
                        "--selection none)")
    p.add_argument("--cd-weight", type=float, default=1.0,
                   help="weight of fisher-cd's contrastive-divergence term (default 1)")
    p.add_argument("--energy-weight", type=float, default=0.0,
                   help="weight of a per-atom energy MSE (eV^2) added to the Fisher objective (default 0)")
    p.add_argument("--huber-delta", type=float,
                   help="eV/Å beyond which force residuals weigh linearly in the Fisher objective "
                        "(default 0.5 with --objective fisher; 0 turns it off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pressure", type=float, metavar="GPA",
                   help="run the MD of crystals at this pressure (NPT, as simulate --pressure): the labelled frames "
                        "carry the volumes the model finds (default: NVT)")
    p.add_argument("--pressure-coupling", choices=["isotropic", "semiisotropic", "anisotropic"], default="isotropic",
                   help="which cell axes scale together under --pressure (default isotropic), as in simulate")
    add_cluster_options(p, "labelling")
    add_device_options(p, cuda_graphs=True)
    p.add_argument("--out", required=True, help="the refine folder (round_NN/, refine.csv, refine.json, refine.png)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..workflows.refine import format_refine_summary, refine

    summary = refine(args.run_dir, data=args.data, out=args.out, calculator=args.calculator,
                     temperature=args.temperature, rounds=args.rounds, replicas=args.replicas, time=args.time,
                     timestep=args.timestep, label_budget=args.label_budget, window=args.window, epochs=args.epochs,
                     lr=args.lr, batch_size=args.batch_size, max_minutes=args.max_minutes, test=args.test,
                     seed=args.seed, selection=args.selection, objective=args.objective,
                     energy_weight=args.energy_weight, huber_delta=args.huber_delta, cd_weight=args.cd_weight,
                     progress=not args.quiet, workers=args.workers, scheduler=args.scheduler, pressure=args.pressure,
                     pressure_coupling=args.pressure_coupling, **device_kwargs(args))
    print(format_refine_summary(summary))
    return 0
