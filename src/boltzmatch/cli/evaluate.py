"""``boltzmatch evaluate RUN_DIR DATA``: error table, per-element force errors, parity plots."""

from __future__ import annotations

import argparse
import json

from .common import add_data_options, add_device_options, data_kwargs, device_kwargs

HELP = "evaluate a trained model on labelled structures: error table and parity plots"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help=HELP, description=HELP)
    p.add_argument("run_dir", help="a run directory from 'boltzmatch train'")
    p.add_argument("data", help="labelled structures")
    p.add_argument("--out", help="folder for metrics.json and parity plots")
    p.add_argument("--json", action="store_true", help="print one JSON object (energies eV, forces eV/Å)")
    p.add_argument("--batch-size", type=int, default=64)
    add_data_options(p)
    add_device_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.evaluate import evaluate, format_evaluation

    result = evaluate(args.run_dir, args.data, out=args.out, batch_size=args.batch_size,
                      data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
                      **device_kwargs(args))
    title = f"Evaluation of {args.run_dir} on {args.data}"
    print(json.dumps(result) if args.json else format_evaluation(result, title))
    return 0
