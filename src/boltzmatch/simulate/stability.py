"""Live stability checks of MD replicas: the bond criterion, non-finite values, runaway temperature.

Bond criterion (Fu et al., arXiv 2210.07237): bonds come from ASE's natural cutoffs on the
first reference frame of each molecule; a replica collapses at the first check where any bond
length deviates by more than ``max_deviation`` (Å, default 0.5) from that bond's mean over the
reference frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from ..data.geometry import Bonds, bond_lengths, composition_key, find_bonds, group_by_composition
from ..errors import BoltzmatchError
from .integrators import MDState

REASONS = ("bond", "non-finite", "temperature")


class BondReference:
    """Bonds and their mean reference lengths (Å) for every molecule (composition) in a data set."""

    def __init__(self, reference: Sequence[Atoms], source: str = "reference"):
        groups = group_by_composition(reference)
        self.source = source
        self.bonds: dict[tuple[int, ...], Bonds] = {}
        self.mean_length: dict[tuple[int, ...], np.ndarray] = {}
        for key, frames in groups.items():
            bonds = find_bonds(frames[0])
            self.bonds[key] = bonds
            self.mean_length[key] = bond_lengths(frames, bonds).mean(axis=0)

    def for_structure(self, atoms: Atoms) -> tuple[Bonds, np.ndarray]:
        key = composition_key(atoms)
        if key not in self.bonds:
            raise BoltzmatchError(
                f"{self.source}: has no frames of {atoms.get_chemical_formula()} (in this atom order); "
                "the bond criterion needs reference frames of every simulated molecule"
            )
        return self.bonds[key], self.mean_length[key]


class StabilityMonitor:
    """Checks all active replicas at once; :meth:`check` returns a reason per replica or None.

    ``max_temperature`` (K) stops a replica whose instantaneous temperature exceeds it.
    """

    def __init__(self, structures: Sequence[Atoms], reference: BondReference, *, max_deviation: float = 0.5,
                 max_temperature: float = float("inf")):
        self.max_deviation = float(max_deviation)
        self.max_temperature = float(max_temperature)
        self.per_replica = [reference.for_structure(a) for a in structures]
        self.cells = [np.asarray(a.cell) for a in structures]
        self.counts = [len(a) for a in structures]
        self.set_active(list(range(len(structures))))

    def set_active(self, replica_ids: Sequence[int]) -> None:
        """Rebuild the flat bond tables for the active replicas, in this order."""
        i_all, j_all, shift_all, ref_all, owner = [], [], [], [], []
        offset = 0
        for slot, r in enumerate(replica_ids):
            bonds, ref = self.per_replica[r]
            i_all.append(bonds.i + offset)
            j_all.append(bonds.j + offset)
            shift_all.append(bonds.offsets @ self.cells[r])
            ref_all.append(ref)
            owner.append(np.full(len(bonds), slot))
            offset += self.counts[r]
        self.n_active = len(replica_ids)

        def cat(parts, dtype):
            return torch.as_tensor(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

        self.i = cat(i_all, torch.long)
        self.j = cat(j_all, torch.long)
        self.shift = torch.as_tensor(np.concatenate(shift_all) if shift_all else np.zeros((0, 3)),
                                     dtype=torch.float64).reshape(-1, 3)
        self.ref = cat(ref_all, torch.float64)
        self.owner = cat(owner, torch.long)

    def max_bond_deviation(self, positions: torch.Tensor) -> torch.Tensor:
        """(n_active,) largest |bond length − reference mean| of each replica, Å."""
        vec = positions[self.j] - positions[self.i] + self.shift.to(positions)
        dev = (vec.norm(dim=-1) - self.ref.to(positions)).abs()
        out = torch.zeros(self.n_active, dtype=positions.dtype, device=positions.device)
        return out.scatter_reduce(0, self.owner.to(positions.device), dev, reduce="amax", include_self=True)

    def check(self, state: MDState) -> list[str | None]:
        """The reason each active replica must stop ('non-finite', 'bond', 'temperature'), or None."""
        finite_atoms = (torch.isfinite(state.positions).all(-1) & torch.isfinite(state.velocities).all(-1)
                        & torch.isfinite(state.forces).all(-1))
        bad_atoms = state.per_structure((~finite_atoms).double())
        nonfinite = (bad_atoms > 0) | ~torch.isfinite(state.energy)
        deviation = self.max_bond_deviation(torch.nan_to_num(state.positions))
        temperature = state.temperature()
        reasons: list[str | None] = []
        for bad, dev, temp in zip(nonfinite.tolist(), deviation.tolist(), temperature.tolist(), strict=True):
            if bad:
                reasons.append("non-finite")
            elif dev > self.max_deviation:
                reasons.append("bond")
            elif temp > self.max_temperature:
                reasons.append("temperature")
            else:
                reasons.append(None)
        return reasons
