"""Entry point of the ``boltzmatch`` command: dispatch to one module per command.

User errors (:class:`~boltzmatch.errors.BoltzmatchError`) print one line on stderr and exit 2,
without a traceback; boltzmatch's own warnings print as one line too (``boltzmatch: warning: ...``).
SIGTERM is turned into KeyboardInterrupt so that a killed command closes its files the same way Ctrl-C does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

from .. import __version__
from ..errors import BoltzmatchError

# command → module (in the order of the help); only the module of the command asked for is imported
COMMAND_MODULES = {"demo": "demo", "generate": "generate", "data": "data", "info": "info", "train": "train",
                   "finetune": "finetune", "import": "import_model", "export": "export", "evaluate": "evaluate",
                   "simulate": "simulate", "stability": "stability", "compare": "compare", "landscape": "landscape",
                   "refine": "refine", "sweep": "sweep", "generative": "generative", "gflownet": "gflownet",
                   "gui": "gui", "docs": "docs"}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the one ``argv`` names first (importing all 19 command modules
    cost a ``gflownet train`` process 0.1 s of its ~5 s)."""
    names = list(COMMAND_MODULES)
    if argv and argv[0] in COMMAND_MODULES:
        names = [argv[0]]
    parser = argparse.ArgumentParser(
        prog="boltzmatch",
        description="Train, fine-tune, sample and judge molecular energy models against the Boltzmann distribution.",
    )
    parser.add_argument("--version", action="version", version=f"boltzmatch {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in names:
        import_module(f".{COMMAND_MODULES[name]}", __package__).add_parser(subparsers)
    return parser


def _terminate(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


_PACKAGE = str(Path(__file__).resolve().parents[1])
_default_format = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """boltzmatch's own warnings as one line, without the file, line and source that Python adds for a
    programmer; other packages' warnings as Python prints them."""
    if str(Path(filename).resolve()).startswith(_PACKAGE):
        return f"boltzmatch: warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    warnings.formatwarning = _format_warning  # what a warning prints; recording ones (tests) are unaffected
    try:
        return int(args.run(args) or 0)
    except BoltzmatchError as exc:
        print(f"boltzmatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("boltzmatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``boltzmatch info FILE | head``): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's exit would flush into the closed pipe and complain
        return 141
    finally:
        warnings.formatwarning = _default_format


if __name__ == "__main__":
    sys.exit(main())
