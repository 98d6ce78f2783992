"""``boltzmatch export RUN_DIR --out FILE``: write a MACE/SchNetPack/NequIP run in its own format."""

from __future__ import annotations

import argparse

HELP = "write a fine-tuned MACE, SchNetPack or NequIP run back as a model file of its own format"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help=HELP, description=HELP + " (read by MACE's or SchNetPack's ASE "
                                                                      "calculator and the rest of their tooling)")
    p.add_argument("run_dir", help="a run whose model is an external one (imported, fine-tuned or train --model mace)")
    p.add_argument("--out", required=True, help="the model file to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.external import export_run
    from ..utils.table import format_table

    summary = export_run(args.run_dir, args.out)
    print(format_table([[k, v] for k, v in summary.items()], title="Exported model"))
    return 0
