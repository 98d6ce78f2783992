"""Run one tutorial script cell by cell and record what each cell printed and which figures it made.

A tutorial is a plain Python script in jupytext's "percent" format: ``# %% [markdown]`` cells hold
text as ``# ``-prefixed Markdown, ``# %%`` cells hold code. Cells run in order in one namespace, in
the working directory given, as ``python SCRIPT`` would run them; a failing cell fails the run.
A cell's output is what it printed and, in order among those lines, the warnings it raised (as
``boltzmatch: warning: ...`` when the CLI formats them), so a page shows what a shell user would
read; progress bars (stderr) are left out.

Usage: python run_tutorial.py SCRIPT WORKDIR OUT.json
OUT.json: {"cells": [{"kind": "markdown"|"code", "source": str, "output": str, "figures": [path, ...]}],
"seconds": float}; figure paths are relative to WORKDIR, in the order the cell wrote them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path


def split_cells(text: str) -> list[dict]:
    cells: list[dict] = []
    kind, lines = None, []
    for line in text.splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append({"kind": kind, "source": "\n".join(lines).strip("\n")})
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
            continue
        if kind == "markdown":
            line = line[2:] if line.startswith("# ") else line.lstrip("#")
        lines.append(line)
    if kind is not None:
        cells.append({"kind": kind, "source": "\n".join(lines).strip("\n")})
    return [c for c in cells if c["source"].strip()]


def pngs(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.png")}


def show_in_output(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` that writes to the cell's output (stdout, redirected) instead of stderr."""
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))


def main() -> int:
    script, workdir, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    os.environ.setdefault("MPLBACKEND", "Agg")
    cells = split_cells(script.read_text())
    namespace: dict = {"__name__": "__main__", "__file__": str(script)}
    start = time.perf_counter()
    for cell in cells:
        cell["output"], cell["figures"] = "", []
        if cell["kind"] != "code":
            continue
        before = pngs(workdir)
        buffer = io.StringIO()
        # a fresh catch_warnings per cell: what a cell warns is shown even where an earlier cell warned the same
        # from the same line (a shell runs each command in a new process)
        with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
            warnings.showwarning = show_in_output
            exec(compile(cell["source"], f"{script.name} (cell)", "exec"), namespace)  # noqa: S102
        cell["output"] = buffer.getvalue()
        sys.stdout.write(cell["output"])
        after = pngs(workdir)
        cell["figures"] = sorted((p for p, t in after.items() if before.get(p) != t), key=lambda p: after[p])
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(json.dumps({"cells": cells, "seconds": time.perf_counter() - start}, indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
