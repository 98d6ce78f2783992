"""``boltzmatch info FILE``: structure count, formulas, labels, energy and force statistics; ``boltzmatch info
RUN_DIR``: the run's model, training, lineage and energy zero, and its training summary."""

from __future__ import annotations

import argparse
import json

from .common import add_data_options, data_kwargs

#: files ``info`` describes as models (MACE's .model, SchNetPack's .pt/.pth, NequIP's packages), not structures
MODEL_FILE_ENDINGS = (".model", ".pt", ".pth", ".ckpt", ".nequip.zip", ".pt2")
HELP = ("summarise a structure file (counts, formulas, labels, energy and force statistics) or a run directory "
        "(model, training, lineage, energy zero)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help=HELP, description=HELP)
    parser.add_argument("file", help="extxyz/xyz, ASE db, ASE traj or MD17/rMD17 npz; or a run directory or a "
                                     "MACE, SchNetPack or NequIP model file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data import format_summary, read_structures, summarize

    path = Path(args.file)
    if path.is_dir() or path.name.endswith(MODEL_FILE_ENDINGS):
        from ..runs.describe import describe_run, format_run_description

        description = describe_run(args.file)
        print(json.dumps(description, indent=2, default=str) if args.json else format_run_description(description))
        return 0
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
