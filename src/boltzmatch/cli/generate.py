"""``boltzmatch generate SYSTEM``: reference MD with GFN2-xTB, EMT or OpenMM."""

from __future__ import annotations

import argparse

from .common import DeprecatedAlias, add_cluster_options

HELP = "make reference data: NVT (or NPT) Langevin MD with xtb, emt or openmm, frames with energy and forces"


def add_parser(subparsers) -> None:
    from ..data.generate import CALCULATORS

    parser = subparsers.add_parser("generate", help=HELP, description=HELP)
    parser.add_argument(
        "system", help="ethanol, aspirin, ... (MD17), alanine-dipeptide, smiles:CCO, Cu-fcc-3x3x3, or a file"
    )
    parser.add_argument("--calculator", choices=CALCULATORS, default="xtb", help="reference method (default xtb)")
    parser.add_argument("--temperature", type=float, default=500.0, help="K (default 500)")
    parser.add_argument("--time", type=float, default=2.5,
                        help="production MD, ps (default 2.5: 5,000 steps of 0.5 fs), as in simulate and refine")
    parser.add_argument("--steps", type=int, action=DeprecatedAlias, new="--time (ps)", help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=int, default=10, help="write every M-th step (default 10)")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    parser.add_argument("--equilibration", type=int, default=1000, help="steps before writing (default 1000)")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="velocities and thermostat noise (default 0)")
    parser.add_argument("--trajectories", type=int, default=1,
                        help="independent trajectories, seeds SEED … SEED+K-1, one after another in OUT (default 1)")
    parser.add_argument("--cell-scale", type=_scales, metavar="S[,S...]",
                        help="scale a crystal's cell by each factor in turn, e.g. 0.98,1,1.02: data at several volumes "
                             "for the equation of state and stress (--trajectories runs at each)")
    parser.add_argument("--pressure", type=float, metavar="GPA",
                        help="NPT for a crystal, its cell free in volume and shape (ASE's LangevinBAOAB): the "
                             "reference for simulate --pressure at this pressure (default: NVT)")
    add_cluster_options(parser, "the trajectories")
    parser.add_argument("--out", required=True, help="output extxyz file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _scales(text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        message = f"expected factors separated by commas, e.g. 0.98,1,1.02; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def run(args: argparse.Namespace) -> int:
    from ..data.generate import generate

    try:
        summary = generate(
            args.system, out=args.out, calculator=args.calculator, temperature=args.temperature,
            time=args.time if args.steps is None else args.steps * args.timestep / 1000.0, interval=args.interval,
            timestep=args.timestep,
            equilibration=args.equilibration, friction=args.friction, seed=args.seed,
            progress=not args.quiet, trajectories=args.trajectories, workers=args.workers, scheduler=args.scheduler,
            cell_scales=args.cell_scale, pressure=args.pressure,
        )
    except KeyboardInterrupt:
        if args.trajectories > 1 or (args.cell_scale and len(args.cell_scale) > 1):
            print(f"interrupted: every finished trajectory is kept; run the same command again to compute the rest "
                  f"of {args.out}")
        else:
            print(f"interrupted: the frames written so far are in {args.out}")
        return 130
    print(summary.table())
    return 0
