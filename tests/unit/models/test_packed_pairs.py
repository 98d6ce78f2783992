"""A training batch brings the data set's own pairs: the edges a model sees are those of a fresh search, bit for
bit, and the model does not search; positions that move are searched afresh."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from boltzmatch.data.packed import PackedStructures
from boltzmatch.models import build_model, neighbors
from boltzmatch.models.base import energy_and_forces
from boltzmatch.models.neighbors import neighbor_list
from boltzmatch.models.packed_pairs import PackedPairs

CUTOFF = 3.0


def _structures(periodic: bool) -> list:
    rng = np.random.default_rng(0)
    out = []
    for k in range(12):
        atoms = molecule(("CH3CH2OH", "C6H6", "H2O")[k % 3])
        if periodic and k % 4 == 3:
            atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        out.append(atoms)
    return out


def _packed(periodic: bool, cutoff: float = CUTOFF, **options) -> PackedStructures:
    packed = PackedStructures(_structures(periodic), dtype=torch.float64)
    packed.pairs = PackedPairs.search(packed, cutoff, chunk=5, **options)  # chunks that split the data
    return packed


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("half", [False, True])
def test_a_batchs_own_pairs_give_the_edges_of_a_fresh_search(periodic, half, monkeypatch):
    packed = _packed(periodic)
    for indices in ([0, 1, 2], [11, 3, 7, 0, 5], [4, 4, 9], list(range(12))[::-1]):
        batch = packed.batch(indices)
        searched = neighbor_list(packed.batch(indices, with_pairs=False), CUTOFF, half=half)
        with monkeypatch.context() as m:
            m.setattr(neighbors, "find_pairs", lambda *a: pytest.fail("the model searched"))
            own = neighbor_list(batch, CUTOFF, half=half)
        assert torch.equal(own.i, searched.i) and torch.equal(own.j, searched.j), indices
        assert torch.equal(own.vectors, searched.vectors) and torch.equal(own.unit_shifts, searched.unit_shifts)


def test_a_model_evaluates_the_batch_with_its_pairs_and_moved_positions_are_searched_again(monkeypatch):
    packed = _packed(False)
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "elements": [1, 6, 8], "n_features": 8, "n_interactions": 2,
                         "cutoff": CUTOFF, "dtype": "float64"})
    batch = packed.batch([2, 0, 7])
    reference = energy_and_forces(model, packed.batch([2, 0, 7], with_pairs=False))
    searches = []
    real = neighbors.find_pairs
    monkeypatch.setattr(neighbors, "find_pairs", lambda *a: searches.append(1) or real(*a))
    energy, forces = energy_and_forces(model, batch)  # the forces' positions are a detached view of the batch's
    assert not searches
    assert torch.equal(energy, reference[0]) and torch.equal(forces, reference[1])
    moved = batch.with_positions(batch.positions + 0.01)
    neighbor_list(moved, CUTOFF)
    assert searches == [1]


def test_a_model_with_another_cutoff_or_a_data_set_too_large_searches():
    packed = _packed(False)
    batch = packed.batch([1, 2])
    for cutoff in (CUTOFF - 0.5, CUTOFF + 0.5):
        assert torch.equal(neighbor_list(batch, cutoff).i,
                           neighbor_list(packed.batch([1, 2], with_pairs=False), cutoff).i)
    assert PackedPairs.search(packed, CUTOFF, chunk=5, max_pairs=100) is None


def test_the_rows_of_a_gather_are_computed_on_the_host():
    """``ranges``: each structure's rows in turn (an empty one adds none); ``to_device``: the arrays split back."""
    from boltzmatch.data.packed import ranges, to_device

    rows = ranges(np.array([5, 0, 10]), np.array([2, 0, 3]))
    assert rows.dtype == np.int64 and rows.tolist() == [5, 6, 10, 11, 12]
    assert ranges(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []
    a, b = to_device(torch.device("cpu"), np.array([1, 2], dtype=np.int32), rows)
    assert a.dtype == b.dtype == torch.long and a.tolist() == [1, 2] and b.tolist() == rows.tolist()
    packed = _packed(False)
    batch = packed.batch([3, 0, 3])  # repeated and reordered structures: their atoms, in that order
    full = packed.full
    expected = torch.cat([full.positions[full.structure_index == k] for k in (3, 0, 3)])
    assert torch.equal(batch.positions, expected)
    assert batch.structure_index.tolist() == sum(([k] * int((full.structure_index == s).sum())
                                                  for k, s in enumerate((3, 0, 3))), [])
