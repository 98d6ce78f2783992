"""The MACE adapter against MACE itself: same energies and forces as MACE's own forward and ASE
calculator, export folds boltzmatch's offsets into MACE's E0s, model files are recognised."""

import pytest
import torch

from boltzmatch.data import AtomsBatch
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model
from boltzmatch.models.external import detect_format
from boltzmatch.runs import run_dir as rd
from boltzmatch.runs.run_dir import file_config
from helpers import assert_matches_calculator
from helpers import external_test_structures as structures

pytest.importorskip("mace")

CONFIG = {"name": "mace", "elements": [1, 6, 8, 29], "hidden_irreps": "8x0e + 8x1o", "max_ell": 2,
          "correlation": 2, "radial_mlp": [8, 8], "r_max": 4.0, "dtype": "float64"}


@pytest.fixture
def mace_model():
    torch.manual_seed(0)
    model = build_model(CONFIG)
    model.set_normalization({1: -13.6, 6: -1030.0, 8: -2040.0, 29: -1000.0}, 0.5)
    with torch.no_grad():  # trained-looking weights: the readouts start near zero otherwise
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model



def test_same_energies_and_forces_as_mace_calculator(mace_model, tmp_path):
    from mace.calculators import MACECalculator

    path = mace_model.export(tmp_path / "m.model")
    calculator = MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")
    assert_matches_calculator(mace_model, calculator, atol=1e-9)


def test_export_folds_offsets_into_e0s(mace_model, tmp_path):
    """After a score objective boltzmatch refits per-element offsets; MACE's own tooling must see them."""
    with torch.no_grad():
        mace_model.element_energy[6] += 0.25
        mace_model.element_energy[1] -= 0.125
    atoms = structures()[0]
    expected = float(mace_model(AtomsBatch.from_atoms([atoms], dtype=torch.float64)))
    reloaded = build_model({"name": "mace", "file": str(mace_model.export(tmp_path / "m.model")), "dtype": "float64"})
    assert reloaded.offsets() == {}
    assert float(reloaded(AtomsBatch.from_atoms([atoms], dtype=torch.float64))) == pytest.approx(expected, abs=1e-9)


def test_model_file_is_recognised_and_loads_as_a_run(mace_model, tmp_path):
    path = mace_model.export(tmp_path / "m.model")
    assert detect_format(path) == "mace"
    config = rd.read_config(path)
    assert config["model"]["name"] == "mace" and config["model"]["dtype"] == "float64"
    loaded = rd.load(path)
    batch = AtomsBatch.from_atoms(structures()[:1], dtype=torch.float64)
    torch.testing.assert_close(loaded(batch), mace_model(batch).detach())
    assert file_config(path)["energy_zero"] is True


def test_not_a_model_file_gets_one_line_error(tmp_path):
    text = tmp_path / "notes.model"
    text.write_text("not a model\n")
    with pytest.raises(BoltzmatchError, match="notes.model: not a model file boltzmatch can import"):
        detect_format(text)
    weights = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(1)}, weights)
    with pytest.raises(BoltzmatchError, match="weights.pt: holds a dict"):
        detect_format(weights)


def test_unknown_head_and_missing_elements_are_config_errors():
    with pytest.raises(BoltzmatchError, match="needs 'elements'"):
        build_model({"name": "mace"})
    with pytest.raises(BoltzmatchError, match="key 'head' must be one of Default"):
        build_model({**CONFIG, "head": "pbe"})


def test_run_directories_keep_the_suffix_that_names_the_format(tmp_path):
    """A NequIP package copied as external.zip lost its '.nequip.zip' and nequip refused to read it."""
    from boltzmatch.runs.external import copy_external

    for name, copied in (("cu.nequip.zip", "external.nequip.zip"), ("m.model", "external.model"),
                         ("best_model", "external")):
        (tmp_path / name).write_bytes(b"x")
        assert copy_external({"file": str(tmp_path / name)}, None, tmp_path / "run")["file"] == copied
