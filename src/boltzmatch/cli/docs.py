"""``boltzmatch docs``: build the documentation site of a source checkout and open it.

The site (Sphinx, extra ``docs``) is built with warnings as errors into ``docs/_build/html``, or
``--out DIR`` (``DIR/html``; the tutorials' runs in ``DIR/tutorial-runs``, Sphinx's cache in
``DIR/doctrees``), so an installed or read-only checkout need not be written to; tutorials run as
part of the build and are rerun only when they or the package change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build the documentation site (extra 'docs') and open it in a browser"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("docs", help=HELP, description=HELP)
    parser.add_argument("--no-open", action="store_true", help="build and print the path, do not open a browser")
    parser.add_argument("--source", help="the docs folder (default: docs/ of the checkout boltzmatch runs from)")
    parser.add_argument("--out", help="build folder (default: DOCS/_build): the site goes to OUT/html")
    parser.set_defaults(run=run)


def docs_source(source: str | None = None) -> Path:
    from ..errors import BoltzmatchError

    folder = Path(source) if source else Path(__file__).resolve().parents[3] / "docs"
    if not (folder / "conf.py").exists():
        raise BoltzmatchError(f"{folder}: no conf.py; boltzmatch docs needs a source checkout (docs/ beside src/) "
                              "or --source DOCS_FOLDER")
    return folder


def build_site(source: Path, out: str | Path | None = None) -> Path:
    """Build ``source`` into ``out/html`` (default ``source/_build``) with warnings as errors; returns
    index.html."""
    from ..errors import BoltzmatchError

    try:
        from sphinx.cmd.build import build_main
    except ImportError:
        raise BoltzmatchError("building the documentation needs Sphinx: pip install 'boltzmatch[docs]'") from None
    root = Path(out) if out else source / "_build"
    html = root / "html"
    # -j auto: Sphinx reads and writes the pages on every core (its part of a build: 49 s on one, 24 s on two)
    status = build_main(["-W", "--keep-going", "-q", "-j", "auto", "-b", "html", "-d", str(root / "doctrees"),
                         str(source), str(html)])
    if status != 0:
        raise BoltzmatchError(f"{source}: the documentation build failed (warnings count as errors; see above)")
    return html / "index.html"


def format_docs_summary(index: Path) -> str:
    """The table printed after a build: every tutorial, whether it ran or was reused, its figures."""
    import json

    from ..utils.table import format_table

    summary_path = index.parents[1] / "tutorial-runs" / "summary.json"
    tutorials = json.loads(summary_path.read_text()) if summary_path.exists() else []
    rows = [[t["tutorial"], "reused (unchanged)" if t["reused"] else "ran", f"{t['seconds']:.0f}", t["figures"]]
            for t in tutorials]
    table = format_table(rows, header=["tutorial", "this build", "seconds", "figures"], title="Documentation")
    return f"{table}\nsite: {index}"


def run(args: argparse.Namespace) -> int:
    index = build_site(docs_source(args.source), args.out)
    print(format_docs_summary(index))
    if not args.no_open:
        import webbrowser

        webbrowser.open(index.as_uri())
    return 0
