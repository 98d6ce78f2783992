"""``boltzmatch info FILE``: structure count, formulas, labels, energy and force statistics."""

from __future__ import annotations

import argparse
import json

from .common import add_data_options, data_kwargs

HELP = "summarise a structure file: counts, formulas, labels, energy and force statistics"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help=HELP, description=HELP)
    parser.add_argument("file", help="extxyz/xyz, ASE db, ASE traj or MD17/rMD17 npz")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import format_summary, read_structures, summarize

    summary = summarize(read_structures(args.file, **data_kwargs(args)))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary, args.file))
    return 0
