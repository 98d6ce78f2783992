"""Shared fixtures."""

import pytest

from boltzmatch.data import generate
from helpers import labelled_molecules


@pytest.fixture
def molecules():
    return labelled_molecules()


@pytest.fixture(scope="session")
def ethanol_xtb(tmp_path_factory):
    """60 GFN2-xTB ethanol frames at 500 K (real reference data, about 2 s)."""
    path = tmp_path_factory.mktemp("data") / "ethanol.xyz"
    generate("ethanol", out=path, calculator="xtb", temperature=500, steps=600, interval=10,
             timestep=0.5, equilibration=100, seed=3, progress=False)
    return path
