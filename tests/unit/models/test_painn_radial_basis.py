"""PaiNN's radial basis: Gaussians by default (measured best), Bessel on request, and a run stored before the choice
existed loads with the Bessel functions it was trained with."""

import pytest
import torch
import yaml

import boltzmatch
from boltzmatch.data import AtomsBatch, write_structures
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model, validate_config
from boltzmatch.models.radial import BesselRBF, GaussianRBF
from boltzmatch.runs import run_dir as rd
from helpers import labelled_molecules

SMALL = {"n_features": 8, "n_interactions": 1, "n_rbf": 6, "cutoff": 4.0}


def test_a_new_config_records_the_gaussian_default_and_bessel_is_a_choice():
    config = validate_config({"name": "painn"})
    assert config["radial_basis"] == "gaussian"
    assert isinstance(build_model(config).rbf, GaussianRBF)
    assert isinstance(build_model({"name": "painn", "radial_basis": "bessel"}).rbf, BesselRBF)
    with pytest.raises(BoltzmatchError, match="radial_basis must be gaussian or bessel, got 'sinc'"):
        build_model({"name": "painn", "radial_basis": "sinc"})


def test_a_run_stored_without_the_key_loads_with_bessel_functions_and_its_own_energies(tmp_path):
    data = tmp_path / "data.xyz"
    frames = labelled_molecules(6)
    write_structures(data, frames)
    run = tmp_path / "run"
    boltzmatch.train(data, out=run, model="painn", config={**SMALL, "radial_basis": "bessel"}, epochs=1,
                     progress=False)
    batch = AtomsBatch.from_atoms(frames)
    with torch.no_grad():
        before = boltzmatch.load(run)(batch)
    config = yaml.safe_load((run / rd.CONFIG).read_text())
    del config["model"]["radial_basis"]  # as a run written before the key existed
    (run / rd.CONFIG).write_text(yaml.safe_dump(config))
    model = boltzmatch.load(run)
    assert isinstance(model.rbf, BesselRBF)
    with torch.no_grad():
        assert torch.equal(model(batch), before)
