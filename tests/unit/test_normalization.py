"""Per-element reference energies: a warning where the data cannot determine them (issue 39)."""

import warnings

import numpy as np
import pytest
import torch
from ase.build import molecule

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.data.labels import make_structure
from boltzmatch.training.normalization import fit_normalization


def test_one_composition_warns_that_element_energies_are_undetermined():

    def frames(names):
        out = []
        for k, name in enumerate(names):
            atoms = molecule(name)
            out.append(make_structure(atoms.numbers, atoms.positions, energy=-10.0 * len(atoms) - k,
                                      forces=np.zeros((len(atoms), 3))))
        return AtomsBatch.from_atoms(out, dtype=torch.float64)

    with pytest.warns(UserWarning, match="determine 1 of the 3 element energies"):
        fit_normalization(frames(["CH3CH2OH"] * 4), [1, 6, 8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three compositions of H, C, O determine all three: no warning
        fit_normalization(frames(["CH3CH2OH", "CH4", "H2O", "CH3OH"]), [1, 6, 8])
