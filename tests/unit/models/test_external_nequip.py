"""The NequIP adapter against NequIP's own ASE calculator (runs where nequip imports: its own environment,
since nequip needs e3nn >= 0.6 and mace-torch pins 0.4.4; from benchmarks/external_models.py --part nequip)."""

import importlib.util

import pytest

from boltzmatch.errors import BoltzmatchError
from boltzmatch.models.external.nequip import NequIPModel, load_graph_model
from helpers import assert_matches_calculator, nequip_graph_model

# each test counted as skipped here, with the reason; tests/integration/test_nequip_environment.py runs them
# in NequIP's own venv
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nequip") is None,
    reason="NequIP needs e3nn >= 0.6, MACE pins 0.4.4: run in .venv-nequip (scripts/nequip_env.sh)")


def test_same_energies_and_forces_as_nequip_calculator():
    from nequip.integrations.ase import NequIPCalculator
    from nequip.integrations.utils import basic_transforms

    graph = nequip_graph_model().eval()
    model = NequIPModel.from_graph_model(graph)
    assert model.elements == [1, 6, 8, 29] and model.cutoff == 4.0
    names = ["H", "C", "O", "Cu"]
    calculator = NequIPCalculator(model=graph, device="cpu",
                                  transforms=basic_transforms(graph.metadata, 4.0, names, None))
    assert_matches_calculator(model, calculator, atol=1e-8)


def test_compiled_files_are_refused_with_the_reason(tmp_path):
    compiled = tmp_path / "model.nequip.pth"
    compiled.write_bytes(b"")
    with pytest.raises(BoltzmatchError, match="inference-only.*import the .nequip.zip package"):
        load_graph_model(compiled)
