"""Entry point of the ``boltzmatch`` command: dispatch to one module per command.

User errors (:class:`~boltzmatch.errors.BoltzmatchError`) print one line on stderr and exit 2,
without a traceback. SIGTERM is turned into KeyboardInterrupt so that a killed command
closes its files the same way Ctrl-C does.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import BoltzmatchError
from . import (
    compare,
    data,
    demo,
    docs,
    evaluate,
    export,
    finetune,
    generate,
    generative,
    gflownet,
    gui,
    import_model,
    info,
    landscape,
    refine,
    simulate,
    stability,
    sweep,
    train,
)

COMMANDS = (demo, generate, data, info, train, finetune, import_model, export, evaluate, simulate, stability, compare,
            landscape, refine, sweep, generative, gflownet, gui, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boltzmatch",
        description="Train, fine-tune, sample and judge molecular energy models against the Boltzmann distribution.",
    )
    parser.add_argument("--version", action="version", version=f"boltzmatch {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _terminate(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.run(args) or 0)
    except BoltzmatchError as exc:
        print(f"boltzmatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("boltzmatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
