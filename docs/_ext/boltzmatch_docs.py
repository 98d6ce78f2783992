"""Sphinx extension: the CLI reference from the argparse parsers, a page per API module, and the tutorials'
pages from running them.

At ``builder-inited`` it writes ``_generated/cli.md`` (every command's ``--help``, sub-commands
included), ``_generated/api/`` (a page per module of the Python API) and, for each ``tutorials/*.py``,
runs the script cell by cell (``run_tutorial.py``, in its own process and working directory under
``_build/tutorial-runs/``) and writes ``_generated/tutorials/NAME.md``: its text, code, printed output and
the figures it made. Tutorials run side by side, one per core (each with ``cores / tutorials`` threads, at
least one): on two cores nine took 7.9 min one after another and 4.7 min side by side, and the eleven of
now, with Sphinx's own part, 5.6 min (CI, December 2026; the longest, 10 and 07, bound it). A tutorial that
fails fails the build. A run is reused only while the script and the package sources are unchanged (their
hash is stored beside the run), so a page always shows what the
current code does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sphinx.errors import ExtensionError

HERE = Path(__file__).resolve().parent
MAX_OUTPUT_LINES = 60


def _command_help(parser: argparse.ArgumentParser, path: list[str], level: int) -> list[str]:
    lines = [f"{'#' * level} `{' '.join(path)}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:  # argparse keeps sub-commands here and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines += _command_help(sub, [*path, name], min(level + 1, 4))
    return lines


def write_cli_reference(target: Path) -> None:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; fix it for the page
    from boltzmatch.cli.main import build_parser

    parser = build_parser()
    lines = ["# Command-line reference", "",
             "Generated from the parsers of `boltzmatch` at build time: what `boltzmatch COMMAND --help` prints.", ""]
    lines += ["```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines += _command_help(sub, ["boltzmatch", name], 2)
    _write(target, "\n".join(lines))


#: the packages of the Python API, bottom layer first (docs/architecture.md); cli and gui are front ends
API_PACKAGES = ("errors", "keys", "units", "utils", "data", "models", "runs", "simulate", "objectives", "sweep",
                "training", "analysis", "generative", "gflownet", "workflows")


def api_modules() -> list[str]:
    """Every module of the API packages, as dotted names, in layer order."""
    import boltzmatch

    root = Path(boltzmatch.__file__).parent
    names = ["boltzmatch"]  # the package itself: the names it exports
    for package in API_PACKAGES:
        path = root / package
        if path.is_dir():
            files = sorted(path.rglob("*.py"))
            names += [".".join(("boltzmatch", *f.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
                      for f in files]
        else:
            names.append(f"boltzmatch.{package}")
    return names


def write_module_pages(target: Path) -> None:
    """``_generated/api/``: one page per module (its docstring and every public member's, as SchNetPack's
    API pages), and an index of them by package. Members are ``:no-index:``: the hand-picked reference
    (reference/api.md) stays the target of cross-references."""
    modules = api_modules()
    index = ["# Every module", "",
             "One page per module of the Python API, generated at build time from the docstrings; packages in the "
             "order of their layers (see the architecture page). The command line and the desktop app are front ends "
             "over these functions.", ""]
    package = None
    for name in modules:
        top = name.split(".")[1] if "." in name else ""
        if top != package:
            if package is not None:
                index += ["```", ""]
            index += [f"## `{'.'.join(('boltzmatch', top)).rstrip('.')}`", "", "```{toctree}", ":maxdepth: 1", ""]
            package = top
        index.append(name)
        _write(target / f"{name}.md", "\n".join([
            f"# `{name}`", "", "```{eval-rst}", f".. automodule:: {name}", "   :members:", "   :no-index:",
            "```", ""]))
    index += ["```", ""]
    for stale in target.glob("boltzmatch*.md"):
        if stale.stem not in modules:
            stale.unlink()
    _write(target / "index.md", "\n".join(index))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:  # unchanged pages keep their time: no rebuild
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(text)
        tmp.replace(path)


def _package_hash() -> str:
    """sha256 of every source file of the installed boltzmatch package."""
    import boltzmatch

    digest = hashlib.sha256()
    for source in sorted(Path(boltzmatch.__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def run_tutorial(script: Path, runs: Path, package_hash: str, threads: int | None = None) -> dict:
    """The tutorial's cells with outputs and figures, and ``reused`` (whether an earlier run served);
    ``threads``: the run's OpenMP/MKL threads (unset: the libraries' own choice)."""
    workdir = runs / script.stem
    record = runs / f"{script.stem}.json"
    stamp = runs / f"{script.stem}.hash"
    key = hashlib.sha256(script.read_bytes() + package_hash.encode()).hexdigest()
    if record.exists() and stamp.exists() and stamp.read_text() == key:
        return {**json.loads(record.read_text()), "reused": True}
    shutil.rmtree(workdir, ignore_errors=True)
    record.unlink(missing_ok=True)
    print(f"boltzmatch docs: running tutorial {script.name} ...", flush=True)
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    result = subprocess.run([sys.executable, str(HERE / "run_tutorial.py"), str(script), str(workdir), str(record)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ExtensionError(f"tutorial {script.name} failed:\n{tail}")
    stamp.write_text(key)
    return {**json.loads(record.read_text()), "reused": False}


def write_tutorial_page(script: Path, run: dict, runs: Path, pages: Path) -> None:
    figures_dir = pages / script.stem
    shutil.rmtree(figures_dir, ignore_errors=True)
    lines: list[str] = []
    for cell in run["cells"]:
        if cell["kind"] == "markdown":
            lines += [cell["source"], ""]
            continue
        lines += ["```python", cell["source"], "```", ""]
        output = cell["output"].rstrip().splitlines()
        if output:
            if len(output) > MAX_OUTPUT_LINES:
                output = output[:MAX_OUTPUT_LINES // 2] + ["..."] + output[-MAX_OUTPUT_LINES // 2:]
            lines += ["```text", *output, "```", ""]
        for figure in cell["figures"]:
            name = figure.replace("/", "--")
            figures_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(runs / script.stem / figure, figures_dir / name)
            lines += [f"![{figure}]({script.stem}/{name})", ""]
    lines += [f"*Ran in {run['seconds']:.0f} s when this page was built; source: "
              f"`docs/tutorials/{script.name}`.*", ""]
    _write(pages / f"{script.stem}.md", "\n".join(lines))


def generate(app) -> None:
    source = Path(app.srcdir)
    generated = source / "_generated"
    write_cli_reference(generated / "cli.md")
    write_module_pages(generated / "api")
    runs = Path(app.outdir).parent / "tutorial-runs"
    runs.mkdir(parents=True, exist_ok=True)
    package_hash = _package_hash()
    scripts = sorted((source / "tutorials").glob("[0-9]*.py"))
    cores = os.cpu_count() or 1
    workers = max(1, min(len(scripts), cores))
    threads = max(1, cores // workers) if workers > 1 else None
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:  # threads only wait: each tutorial is its own process
        futures = [pool.submit(run_tutorial, script, runs, package_hash, threads) for script in scripts]
        try:
            runs_done = [f.result() for f in futures]  # the first failing tutorial (in order) fails the build
        except Exception:
            pool.shutdown(cancel_futures=True)  # those not started yet do not start
            raise
    summary = []
    for script, run in zip(scripts, runs_done):
        write_tutorial_page(script, run, runs, generated / "tutorials")
        summary.append({"tutorial": script.name, "reused": run["reused"], "seconds": run["seconds"],
                        "figures": sum(len(c["figures"]) for c in run["cells"])})
    _write(runs / "summary.json", json.dumps(summary, indent=1))  # read by `boltzmatch docs` for its table


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
