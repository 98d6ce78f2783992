"""The SchNetPack adapter against SchNetPack's own calculator (runs where schnetpack imports: its own
environment with torch < 2.5, from benchmarks/external_models.py --part schnetpack)."""

import importlib.util

import pytest
import torch

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model
from boltzmatch.models.external import detect_format
from helpers import assert_matches_calculator, schnetpack_model_file
from helpers import external_test_structures as structures

# each test counted as skipped, with the reason (a module-level importorskip hid how many)
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("schnetpack") is None,
    reason="SchNetPack 2.1 needs torch < 2.5: its own venv (benchmarks/external_models.py --part schnetpack)")



@pytest.mark.parametrize("representation", ["schnet", "painn"])
def test_same_energies_and_forces_as_schnetpack_calculator(tmp_path, representation):
    from schnetpack.interfaces import SpkCalculator
    from schnetpack.transform import ASENeighborList

    path = schnetpack_model_file(tmp_path / "best_model", representation)
    assert detect_format(path) == "schnetpack"
    model = build_model({"name": "schnetpack", "file": str(path), "dtype": "float64"})
    calculator = SpkCalculator(model_file=str(path), neighbor_list=ASENeighborList(cutoff=4.0), energy_key="energy",
                               force_key="forces", energy_unit="eV", position_unit="Ang", dtype=torch.float64)
    assert_matches_calculator(model, calculator, atol=1e-9)


def test_units_and_export_fold_offsets(tmp_path):
    path = schnetpack_model_file(tmp_path / "best_model")
    in_ev = build_model({"name": "schnetpack", "file": str(path), "dtype": "float64"})
    in_kcal = build_model({"name": "schnetpack", "file": str(path), "dtype": "float64", "energy_unit": "kcal/mol"})
    batch = AtomsBatch.from_atoms(structures()[:1], dtype=torch.float64)
    assert float(in_kcal(batch)) == pytest.approx(float(in_ev(batch)) * 0.0433641, rel=1e-5)
    with torch.no_grad():
        in_ev.element_energy[6] += 0.5
    expected = float(in_ev(batch))
    reloaded = build_model({"name": "schnetpack", "file": str(in_ev.export(tmp_path / "exported")),
                            "dtype": "float64"})
    assert float(reloaded(batch)) == pytest.approx(expected, abs=1e-9)
