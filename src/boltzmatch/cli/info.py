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
    if args.file.endswith(".db"):
        from ..data.qm9 import property_statistics

        summary["properties"] = property_statistics(args.file)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(format_summary(summary, args.file))
    if summary.get("properties"):
        from ..utils.table import format_table

        rows = [[k, v["unit"], f"{v['mean']:.6g}", f"{v['std']:.4g}", f"{v['min']:.6g}", f"{v['max']:.6g}"]
                for k, v in summary["properties"].items()]
        print(format_table(rows, header=["property", "unit", "mean", "std", "min", "max"],
                           title="Properties (row.data)"))
    return 0
