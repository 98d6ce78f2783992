"""Every public docstring renders without a docutils warning after napoleon, as the docs build needs (the
build treats warnings as errors and takes minutes; this finds the same faults in seconds: a paragraph after a
NumPy ``Parameters`` section once became a field list and failed the build)."""

import importlib
import inspect
import io
import pkgutil

import pytest

docutils_core = pytest.importorskip("docutils.core", reason="the docs extra")
napoleon = pytest.importorskip("sphinx.ext.napoleon", reason="the docs extra")

import boltzmatch  # noqa: E402

IGNORED = ("Unknown interpreted text role", "No role entry", "Trying", "Unknown directive")


def _public_docstrings():
    from sphinx.ext.napoleon.docstring import GoogleDocstring, NumpyDocstring

    config = napoleon.Config(napoleon_use_param=True)
    for info in pkgutil.walk_packages(boltzmatch.__path__, "boltzmatch."):
        if ".gui" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        members = [(info.name, module)] + [
            (f"{info.name}.{name}", value) for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and getattr(value, "__module__", "") == info.name]
        for name, value in members:
            doc = inspect.getdoc(value)
            if doc:
                yield name, str(GoogleDocstring(str(NumpyDocstring(doc, config)), config))


def test_every_public_docstring_renders_cleanly():
    faults = []
    for name, rst in _public_docstrings():
        stream = io.StringIO()
        docutils_core.publish_doctree(rst, settings_overrides={"warning_stream": stream, "report_level": 2})
        lines = [line for line in stream.getvalue().splitlines()
                 if line.strip() and not any(text in line for text in IGNORED)]
        if any("WARNING" in line or "ERROR" in line for line in lines):
            faults.append(f"{name}: {lines[0]}")
    assert faults == []
