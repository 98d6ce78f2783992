"""``boltzmatch import MODEL_FILE --out RUN_DIR``: a MACE, SchNetPack or NequIP model as a run."""

from __future__ import annotations

import argparse

HELP = "import a MACE, SchNetPack or NequIP model file as a run directory (every command then takes it)"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("import", help=HELP, description=HELP + ". Commands also take the file directly.")
    p.add_argument("model_file", help="a model file: MACE (*.model from mace_run_train), SchNetPack 2 (best_model), "
                                      "NequIP (*.nequip.zip from nequip-package, *.ckpt from nequip-train)")
    p.add_argument("--out", required=True, help="the new run directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.external import format_import_summary, import_model

    print(format_import_summary(import_model(args.model_file, args.out)))
    return 0
