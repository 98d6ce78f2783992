"""The documentation site builds with warnings as errors, its tutorials run, and the CLI reference is complete."""

import shutil
from pathlib import Path

import pytest

from boltzmatch.cli.main import COMMAND_MODULES, main

DOCS = Path(__file__).resolve().parents[2] / "docs"
pytest.importorskip("sphinx")
pytest.importorskip("furo")
pytest.importorskip("myst_parser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh build from a copy of docs/ (no cached tutorial runs), as CI sees it."""
    source = tmp_path_factory.mktemp("site") / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "_generated"))
    assert main(["docs", "--source", str(source), "--out", str(source.parent / "build"), "--no-open"]) == 0
    assert not (source / "_build").exists()  # --out: nothing built into the source folder
    return source


def test_site_builds_and_every_tutorial_page_shows_its_own_output_and_figures(site):
    html = site.parent / "build" / "html"
    assert (html / "index.html").exists() and (html / "reference" / "api.html").exists()
    for script in sorted((site / "tutorials").glob("[0-9]*.py")):
        page = (site / "_generated" / "tutorials" / f"{script.stem}.md").read_text()
        assert "```text" in page, f"{script.name}: no printed output on its page"
        figures = list((site / "_generated" / "tutorials" / script.stem).glob("*.png"))
        assert figures, f"{script.name}: made no figure"
        assert all(f"{script.stem}/{f.name}" in page for f in figures)
        assert (html / "_generated" / "tutorials" / f"{script.stem}.html").exists()
    from boltzmatch.cli.docs import format_docs_summary

    table = format_docs_summary(html / "index.html")
    assert all(script.name in table for script in (site / "tutorials").glob("[0-9]*.py")) and "ran" in table


def test_cli_reference_lists_every_command(site):
    reference = (site / "_generated" / "cli.md").read_text()
    for name in COMMAND_MODULES:
        assert f"`boltzmatch {name}`" in reference, name


def test_a_failing_tutorial_fails_the_build_with_its_error(tmp_path, capsys):
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "_generated", "[0-9]*.py"))
    (source / "tutorials" / "01_broken.py").write_text("# %% [markdown]\n# # Broken\n\n# %%\n"
                                                        "raise ValueError('this tutorial is out of date')\n")
    assert main(["docs", "--source", str(source), "--no-open"]) == 2
    assert "this tutorial is out of date" in capsys.readouterr().err


def test_docs_outside_a_checkout_is_a_one_line_error(tmp_path, capsys):
    assert main(["docs", "--source", str(tmp_path), "--no-open"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no conf.py" in err


def test_every_module_of_the_api_has_its_own_page(site):
    """Issue 39: per-module API pages (as SchNetPack's), generated from the package, so none is forgotten."""
    import boltzmatch

    html = site.parent / "build" / "html" / "_generated" / "api"
    root = Path(boltzmatch.__file__).parent
    modules = [".".join(("boltzmatch", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
               for p in root.rglob("*.py") if p.relative_to(root).parts[0] not in ("cli", "gui", "__main__.py")]
    assert len(modules) > 100
    for name in modules:
        page = html / f"{name}.html"
        assert page.exists(), f"{name}: no API page"
    journal = (html / "boltzmatch.utils.journal.html").read_text()
    assert "OrderedJournal" in journal and "Results of numbered tasks" in journal  # docstrings, not empty stubs
