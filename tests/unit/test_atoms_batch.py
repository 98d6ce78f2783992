import numpy as np
import torch
from ase.build import bulk, molecule

from boltzmatch.data import AtomsBatch, energy_of, forces_of
from helpers import labelled_molecules


def test_round_trip_keeps_everything():
    structures = labelled_molecules(3) + labelled_molecules(2, name="H2O", seed=1)
    batch = AtomsBatch.from_atoms(structures, dtype=torch.float64)
    assert batch.n_structures == 5
    assert batch.n_atoms == 3 * 9 + 2 * 3
    assert batch.atoms_per_structure.tolist() == [9, 9, 9, 3, 3]
    back = batch.to_atoms()
    for a, b in zip(structures, back):
        np.testing.assert_allclose(a.positions, b.positions)
        assert (a.numbers == b.numbers).all()
        assert energy_of(a) == energy_of(b)
        np.testing.assert_allclose(forces_of(a), forces_of(b))


def test_labels_optional_and_periodic_cells():
    crystal = bulk("Cu", "fcc", cubic=True)
    batch = AtomsBatch.from_atoms([crystal, molecule("H2O")])
    assert batch.energy is None and batch.forces is None
    assert batch.pbc.tolist() == [[True] * 3, [False] * 3]
    torch.testing.assert_close(batch.cell[0], torch.as_tensor(np.asarray(crystal.cell), dtype=torch.float32))
    assert batch.structure_index.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_to_dtype_keeps_integer_fields():
    batch = AtomsBatch.from_atoms(labelled_molecules(2)).to(dtype=torch.float64)
    assert batch.positions.dtype == torch.float64
    assert batch.numbers.dtype == torch.long
