"""``boltzmatch compare RUN_DIR ... --test DATA --out REPORT_DIR``: models side by side."""

from __future__ import annotations

import argparse

from .common import add_alias, add_data_options, add_device_options, data_kwargs, device_kwargs

HELP = "judge models side by side: errors, MD stability, h(r), KS, MMD; report.md with plots"


def add_parser(subparsers) -> None:
    from ..simulate.integrators import INTEGRATORS

    p = subparsers.add_parser("compare", help=HELP, description=HELP)
    p.add_argument("run_dirs", nargs="+", help="run directories to compare")
    p.add_argument("--test", help="labelled structures the models never saw (a separately seeded reference "
                                  "trajectory); required")
    add_alias(p, "--reference", "--test")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--names", nargs="+", help="column names (default: the run directories' names)")
    p.add_argument("--simulate", action="store_true", help="also run MD with every model (same seeds)")
    p.add_argument("--start", help="starting structures for MD (default: --test)")
    p.add_argument("--temperature", type=float, help="K (default: the reference's recorded temperature, else 500)")
    p.add_argument("--replicas", type=int, default=16, help="MD replicas per model (default 16)")
    p.add_argument("--time", type=float, default=20.0, help="ps per replica (default 20)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--integrator", choices=INTEGRATORS, default="langevin")
    p.add_argument("--interval", type=int, default=20, help="steps between saved frames (default 20)")
    p.add_argument("--landscape", action="store_true", help="add each model's loss landscape and sharpness")
    p.add_argument("--landscape-grid", type=int, default=11, help="landscape points per axis (default 11)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_options(p)
    add_device_options(p, cuda_graphs=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.compare import compare, format_comparison
    from ..errors import BoltzmatchError

    if not args.test:
        raise BoltzmatchError("compare needs --test FRAMES: labelled structures the models never saw")
    result = compare(
        args.run_dirs, args.test, out=args.out, names=args.names, simulate=args.simulate, start=args.start,
        temperature=args.temperature, replicas=args.replicas, time=args.time, timestep=args.timestep,
        integrator=args.integrator, interval=args.interval, seed=args.seed, landscape=args.landscape,
        landscape_grid=args.landscape_grid,
        progress=not args.quiet, data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
        **device_kwargs(args),
    )
    print(format_comparison(result))
    print(f"report: {result['report']}")
    return 0
