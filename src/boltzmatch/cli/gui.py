"""``boltzmatch gui``: the desktop app (extra ``gui``); ``--screenshots DIR`` walks every pane through
a small workflow, saves one PNG per pane and exits."""

from __future__ import annotations

import argparse

HELP = "open the desktop app (PySide6; extra 'gui')"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("gui", help=HELP, description=HELP)
    parser.add_argument("--workdir", help="folder for new data and runs (default: the last one, else "
                        "~/boltzmatch-runs)")
    parser.add_argument("--screenshots", metavar="DIR",
                        help="run the small workflow through every pane, save DIR/NN-pane.png, and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import BoltzmatchError

    try:
        import PySide6  # noqa: F401
    except ImportError:
        raise BoltzmatchError("the desktop app needs PySide6: pip install 'boltzmatch[gui]'") from None
    from ..gui import run_app

    return run_app(workdir=args.workdir, screenshots=args.screenshots)
