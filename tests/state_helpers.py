"""An MDState of given structures, for tests of the stability checks."""

import numpy as np
import torch
from ase import units

from boltzmatch.simulate.integrators import MDState


def state_of(structures, temperature=300.0):
    positions = torch.as_tensor(np.concatenate([a.positions for a in structures]), dtype=torch.float64)
    index = torch.repeat_interleave(torch.arange(len(structures)), torch.as_tensor([len(a) for a in structures]))
    n = len(structures)
    return MDState(positions=positions, velocities=torch.zeros_like(positions), forces=torch.zeros_like(positions),
                   energy=torch.zeros(n, dtype=torch.float64),
                   masses=torch.ones(len(positions), 1, dtype=torch.float64),
                   structure_index=index, kT=torch.full((n,), units.kB * temperature, dtype=torch.float64),
                   dof=torch.as_tensor([3.0 * len(a) for a in structures], dtype=torch.float64))
