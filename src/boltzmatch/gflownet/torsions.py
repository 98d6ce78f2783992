"""Molecular conformations on a torsion grid: a GFlowNet sampling in proportion to exp(−βU).

A state fixes the first k of K torsion angles to one of ``bins`` grid values (the rest unset);
forward action g sets the next torsion to bin g, exit is allowed once all K are set; backward action
g unsets the last torsion when it sits in bin g. The object is a conformation: a reference structure
with each torsion rotated rigidly (the atoms on the far side of the bond turn, the rest of the
molecule held fixed). Held fixed, not relaxed, on purpose: the reward of every grid point is then
one energy call, deterministic and cheap (1,296 OpenMM calls for alanine dipeptide's 36 × 36 grid,
about a second), and the target R/Z is exactly enumerable; a relaxed (restrained-minimised) surface
would cost a minimisation per point and depend on the minimiser.

R(x) = exp(−β (U(x) − U_min)), β = 1/(k_B T), U from ``openmm``, ``xtb`` or ``emt`` (ASE calculators)
or a boltzmatch run directory (the model's energy): the whole reward table is computed once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units

from ..analysis.geometry import ALANINE_DIPEPTIDE_PHI_PSI, find_bonds
from ..errors import BoltzmatchError
from .env import Environment

MOLECULES = ("alanine-dipeptide",)
LOG_REWARD_FLOOR = -30.0


def moving_side(atoms: Atoms, b: int, c: int) -> np.ndarray:
    """Indices of the atoms on c's side of the bond b–c (the part a torsion about b–c turns)."""
    bonds = find_bonds(atoms)
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(atoms))}
    for i, j in zip(bonds.i.tolist(), bonds.j.tolist()):
        neighbours[i].add(j)
        neighbours[j].add(i)
    seen, stack = {c}, [c]
    ring = False
    while stack:
        current = stack.pop()
        for k in neighbours[current]:
            if k == b:
                ring = ring or current != c  # reaching b other than through the bond itself
                continue
            if k not in seen:
                seen.add(k)
                stack.append(k)
    if ring:
        raise BoltzmatchError(f"the bond {b}–{c} is in a ring; its torsion cannot turn rigidly")
    return np.array(sorted(seen))


class Torsions(Environment):
    name = "torsions"
    enumerable = True

    def __init__(self, molecule: str = "alanine-dipeptide", bins: int = 36, temperature: float = 300.0,
                 energy: str = "openmm", torsions: list[list[int]] | None = None):
        if molecule not in MOLECULES:
            raise BoltzmatchError(f"unknown molecule {molecule!r}; expected one of {', '.join(MOLECULES)}")
        if bins < 2 or not temperature > 0:
            raise BoltzmatchError(f"torsions need bins ≥ 2 and a positive temperature, got {bins}, {temperature}")
        self.molecule, self.bins, self.temperature, self.energy = molecule, int(bins), float(temperature), energy
        self.torsions = [list(map(int, t)) for t in (torsions or ALANINE_DIPEPTIDE_PHI_PSI)]
        self.k = len(self.torsions)
        if self.bins**self.k > 200_000:
            raise BoltzmatchError(f"{self.bins}^{self.k} grid points are too many to enumerate")
        self.n_actions = self.bins + 1
        self.n_backward = self.bins
        self.max_length = self.k
        self.angles = np.linspace(-180.0, 180.0, self.bins, endpoint=False) + 180.0 / self.bins  # bin centres, °
        self._reference = self._molecule()
        self._sides = [moving_side(self._reference, t[1], t[2]) for t in self.torsions]
        self.energies = self._energy_table()  # (bins,)*k in eV
        beta = 1.0 / (units.kB * self.temperature)
        # rigid rotations put atoms on top of each other (U up to 10⁷ eV); capping β(U − U_min) at
        # LOG_REWARD_FLOOR changes R/Z by < e⁻³⁰ per state and keeps float32 losses finite
        log_ratio = np.minimum(beta * (self.energies - self.energies.min()), -LOG_REWARD_FLOOR)
        self._log_reward_table = torch.as_tensor(-log_ratio.reshape(-1))

    def options(self) -> dict:
        return {"molecule": self.molecule, "bins": self.bins, "temperature": self.temperature,
                "energy": self.energy, "torsions": self.torsions}

    def _molecule(self) -> Atoms:
        from ..data.openmm_reference import alanine_dipeptide_atoms

        return alanine_dipeptide_atoms()

    def conformations(self, bins: np.ndarray) -> list[Atoms]:
        """Structures for full assignments ``bins`` (n, k): each torsion rotated rigidly to its bin centre."""
        out = []
        for row in np.atleast_2d(bins):
            atoms = self._reference.copy()
            for (a, b, c, d), side, g in zip(self.torsions, self._sides, row):
                mask = np.zeros(len(atoms), dtype=bool)
                mask[side] = True
                atoms.set_dihedral(a, b, c, d, float(self.angles[g]), mask=mask)
            out.append(atoms)
        return out

    def _energy_table(self) -> np.ndarray:
        grid = np.stack(np.meshgrid(*[np.arange(self.bins)] * self.k, indexing="ij"), -1).reshape(-1, self.k)
        frames = self.conformations(grid)
        if Path(self.energy).exists():
            from ..simulate.calculator import BoltzmatchCalculator

            calculator = BoltzmatchCalculator(self.energy)
        else:
            from ..data.generate import make_calculator

            calculator = make_calculator(self.energy, self.molecule)
        energies = []
        for atoms in frames:
            atoms.calc = calculator
            energies.append(atoms.get_potential_energy())
        return np.asarray(energies).reshape((self.bins,) * self.k)

    # protocol ---------------------------------------------------------------------------------------
    def initial(self, n):
        return torch.full((n, self.k), -1, dtype=torch.long)

    def _set(self, states):
        return (states >= 0).sum(1)

    def forward_mask(self, states):
        full = self._set(states) == self.k
        return torch.cat([(~full)[:, None].expand(-1, self.bins), full[:, None]], 1)

    def backward_mask(self, states):
        count = self._set(states)
        last = states.gather(1, (count - 1).clamp_min(0)[:, None]).squeeze(1)
        mask = torch.zeros(len(states), self.bins, dtype=torch.bool)
        rows = count > 0
        mask[rows, last[rows]] = True
        return mask

    def step(self, states, actions):
        out = states.clone()
        out[torch.arange(len(states)), self._set(states)] = actions
        return out

    def backward_step(self, states, actions):
        out = states.clone()
        out[torch.arange(len(states)), self._set(states) - 1] = -1
        return out

    def log_reward(self, states):
        full = self._set(states) == self.k
        codes = (states.clamp_min(0) * (self.bins ** torch.arange(self.k - 1, -1, -1))).sum(1)
        return torch.where(full, self._log_reward_table[codes], torch.zeros(len(states), dtype=torch.float64))

    def features(self, states):
        return torch.nn.functional.one_hot(states + 1, self.bins + 1).reshape(len(states), -1).float()

    def level(self, states):
        return self._set(states)

    def all_states(self):
        parts = [self.initial(1)]
        for level in range(1, self.k + 1):
            grid = torch.stack(torch.meshgrid(*[torch.arange(self.bins)] * level, indexing="ij"), -1).reshape(-1, level)
            parts.append(torch.cat([grid, torch.full((len(grid), self.k - level), -1)], 1))
        return torch.cat(parts)

    def index(self, states):
        level = self._set(states)
        offsets = torch.tensor([sum(self.bins**j for j in range(i)) for i in range(self.k + 1)])
        weights = self.bins ** torch.arange(self.k - 1, -1, -1)
        # prefix codes: the set torsions as a base-`bins` number of `level` digits
        codes = (states.clamp_min(0) * weights).sum(1) // (self.bins ** (self.k - level))
        return offsets[level] + codes

    def grid(self, values: torch.Tensor) -> np.ndarray:
        """Values over all states → the (bins,)*k array of the full assignments."""
        return values[-self.bins**self.k:].reshape((self.bins,) * self.k).numpy()
