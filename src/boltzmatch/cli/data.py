"""``boltzmatch data qm9 --out qm9.db``: reference data sets shipped in packages (no downloads)."""

from __future__ import annotations

import argparse

HELP = "make data sets from packages: qm9 (the qm9pack wheel) as an ASE db in SchNetPack's layout"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help=HELP, description=HELP)
    sets = p.add_subparsers(title="data sets", metavar="SET", dest="data_set", required=True)
    q = sets.add_parser("qm9", help="QM9 (130,831 molecules, B3LYP) from the qm9 extra",
                        description="QM9 from the qm9pack wheel: properties under SchNetPack's names, energies in eV")
    q.add_argument("--out", required=True, help="ASE db to write (.db)")
    q.add_argument("--limit", type=int, help="a random subset of this many molecules")
    q.add_argument("--seed", type=int, default=0, help="seed of the random subset")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data.qm9 import write_qm9_db
    from ..utils.table import format_table

    result = write_qm9_db(args.out, limit=args.limit, seed=args.seed, progress=not args.quiet)
    print(format_table([["file", result["out"]], ["molecules", result["n_molecules"]],
                        ["elements", " ".join(result["elements"])], ["seed", result["seed"]],
                        ["energies", "eV (energy_U0, energy_U, enthalpy_H, free_energy, zpve, homo, lumo, gap)"]],
                       title="QM9"))
    return 0
