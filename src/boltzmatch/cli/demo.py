"""``boltzmatch demo``: reference data, energy fits, Fisher fine-tuning, dsm, MD and the report."""

from __future__ import annotations

import argparse

from .common import add_device_options, device_kwargs

HELP = "the main job: xTB ethanol, MSE vs Fisher vs dsm models, MD stability, comparison report (10–12 min on 2 cores)"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help=HELP, description=HELP)
    p.add_argument("--out", default="boltzmatch-demo", help="folder (default boltzmatch-demo); reused stages skip")
    p.add_argument("--quick", action="store_true", help="a 2-minute version at toy sizes")
    p.add_argument("--temperature", type=float, default=500.0, help="K (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.compare import format_comparison
    from ..workflows.demo import demo, format_stages

    result = demo(args.out, quick=args.quick, temperature=args.temperature, seed=args.seed, progress=not args.quiet,
                  **device_kwargs(args))
    print(format_stages(result["stages"]))
    print(format_comparison(result))
    print(f"report: {result['report']}")
    return 0
