"""``boltzmatch stability TRAJECTORY --reference FRAMES``: judge any trajectory by the collapse criterion."""

from __future__ import annotations

import argparse
import json

from .common import add_criterion_options

HELP = "judge a trajectory (boltzmatch, ASE, a LAMMPS dump) by the collapse criterion MD uses"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stability", help=HELP, description=HELP + ", against reference frames that are "
                              "judged by it first")
    p.add_argument("trajectory", help="extxyz, traj, db, npz, or a LAMMPS text dump (.lammpstrj, .dump)")
    p.add_argument("--reference", required=True, help="frames that define what the molecule does")
    add_criterion_options(p)
    p.add_argument("--frame-fs", type=float,
                   help="fs between frames, for files whose frames record no time_ps (generate's and simulate's "
                        "record it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..simulate.judge import format_stability, judge_trajectory

    result = judge_trajectory(args.trajectory, args.reference, criterion=args.criterion,
                              max_deviation=args.max_deviation, persist=args.persist, frame_fs=args.frame_fs,
                              rdf_window=args.rdf_window, max_rdf_deviation=args.max_rdf_deviation)
    print(json.dumps(result, indent=2) if args.json else format_stability(result))
    return 0
