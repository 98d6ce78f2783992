"""Shared fixtures."""

import pytest
import torch

import boltzmatch
from boltzmatch.data import generate
from helpers import labelled_molecules


@pytest.fixture
def molecules():
    return labelled_molecules()


@pytest.fixture(scope="session")
def ethanol_xtb(tmp_path_factory):
    """60 GFN2-xTB ethanol frames at 500 K (real reference data, about 2 s)."""
    path = tmp_path_factory.mktemp("data") / "ethanol.xyz"
    generate("ethanol", out=path, calculator="xtb", temperature=500, time=0.3, interval=10,
             timestep=0.5, equilibration=100, seed=3, progress=False)
    return path


@pytest.fixture
def linear_runs(tmp_path, ethanol_xtb):
    """Two linear potentials on the xTB frames: closed-form energy fit and its Fisher optimum."""
    common = dict(model="linear", config={"n_rbf": 6, "cutoff": 4.0}, solver="closed-form", temperature=500,
                  ridge=1e-8, progress=False)
    boltzmatch.train(ethanol_xtb, out=tmp_path / "energy", objective="energy", **common)
    boltzmatch.train(ethanol_xtb, out=tmp_path / "fisher", objective="fisher", **common)
    return tmp_path / "energy", tmp_path / "fisher"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run where CUDA is visible; elsewhere each is skipped with the reason (pytest's
    summary counts them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (gpu marker); none is visible here")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
