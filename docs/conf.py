"""Sphinx configuration of boltzmatch's documentation site (build: ``boltzmatch docs`` or
``sphinx-build -W -b html docs docs/_build/html``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import boltzmatch  # noqa: E402

project = "boltzmatch"
author = "boltzmatch developers"
release = version = boltzmatch.__version__
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "boltzmatch_docs",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "tutorials/*.py", "screenshots", "**/.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["wrap.css"]  # long command lines wrap in their boxes
html_title = f"boltzmatch {version}"
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
