"""The memory check of ``ism``'s exact Laplacian: what it counts grows as 3N × pairs, and a batch that cannot fit
is refused with one line before a run directory exists (a 36-atom Al slab at batch 32 was killed for want of
memory without a word)."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.cli.main import main
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model
from boltzmatch.training import laplacian_memory
from boltzmatch.training.laplacian_memory import check_laplacian_memory, laplacian_bytes


def _two_apart(atoms):
    """Two copies 30 Å apart: twice the atoms and twice the pairs, so 4× the passes × pairs."""
    other = atoms.copy()
    other.positions += np.array([30.0, 0.0, 0.0])
    return atoms + other


def test_the_count_grows_as_coordinates_times_pairs():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 2})
    ethanol = molecule("CH3CH2OH")
    one, two = laplacian_bytes(model, ethanol), laplacian_bytes(model, _two_apart(ethanol))
    assert one > 0 and 3.5 < two / one < 4.1


def test_a_batch_that_cannot_fit_is_refused_with_the_batch_size_that_fits():
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 2})
    ethanol = molecule("CH3CH2OH")
    per_structure = laplacian_bytes(model, ethanol)
    free = int(10.5 * per_structure / laplacian_memory.FREE_SHARE)  # room for 10 structures
    assert check_laplacian_memory(model, [ethanol], 10, dtype=torch.float32, device=torch.device("cpu"),
                                  free=free) == 10 * per_structure
    with pytest.raises(BoltzmatchError, match=r"C2H6O needs 3N = 27 .* at batch size 32, .* --batch-size 10 or less, "
                                              r"or --objective ssm"):
        check_laplacian_memory(model, [ethanol], 32, dtype=torch.float32, device=torch.device("cpu"), free=free)


def test_train_refuses_before_it_writes_anything(tmp_path, ethanol_xtb, monkeypatch, capsys):
    monkeypatch.setattr(laplacian_memory, "free_memory", lambda device: 10**6)  # 1 MB free
    out = tmp_path / "run"
    code = main(["train", str(ethanol_xtb), "--objective", "ism", "--epochs", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--objective ssm" in err
    assert not out.exists()
