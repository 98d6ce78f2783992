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

The molecule is alanine dipeptide (torsions φ/ψ) or any structure boltzmatch can build (an MD17
name, ``smiles:…``, a file); its torsions are given as atom quadruples or found by RDKit: bonds from
the geometry (``rdDetermineBonds``, connectivity only: without bond orders an amide C–N bond counts
as rotatable), rotatable ones by Lipinski's SMARTS (not in a ring, no terminal atom), each with its
heaviest neighbours as the outer atoms (ethanol: C–C and C–O; toluene: the methyl; benzene: none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units

from ..data.geometry import ALANINE_DIPEPTIDE_PHI_PSI, find_bonds
from ..errors import BoltzmatchError
from .env import Environment

LOG_REWARD_FLOOR = -30.0


def rotatable_torsions(atoms: Atoms) -> list[list[int]]:
    """Torsions (a, b, c, d) about the rotatable bonds b–c of ``atoms`` (RDKit, the ``rdkit`` extra)."""
    try:
        from rdkit import Chem
        from rdkit.Chem import Lipinski, rdDetermineBonds
    except ImportError:
        raise BoltzmatchError("finding rotatable bonds needs RDKit (pip install 'boltzmatch[rdkit]'), "
                              "or give the torsions as atom quadruples") from None
    block = f"{len(atoms)}\n\n" + "\n".join(f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z)
                                           in zip(atoms.get_chemical_symbols(), atoms.get_positions()))
    mol = Chem.MolFromXYZBlock(block)
    rdDetermineBonds.DetermineConnectivity(mol)
    Chem.FastFindRings(mol)  # ring membership for the SMARTS' "not in a ring"
    masses = atoms.get_masses()
    torsions = []
    for b, c in sorted(mol.GetSubstructMatches(Lipinski.RotatableBondSmarts)):
        outer = []
        for centre, other in ((b, c), (c, b)):
            neighbours = [n.GetIdx() for n in mol.GetAtomWithIdx(centre).GetNeighbors() if n.GetIdx() != other]
            outer.append(max(neighbours, key=lambda i: (masses[i], -i)))
        torsions.append([outer[0], b, c, outer[1]])
    return torsions


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
                 calculator: str = "openmm", torsions: list[list[int]] | None = None):
        if bins < 2 or not temperature > 0:
            raise BoltzmatchError(f"torsions need bins ≥ 2 and a positive temperature, got {bins}, {temperature}")
        self.molecule, self.bins, self.temperature = molecule, int(bins), float(temperature)
        self.calculator = calculator
        self._reference = self._molecule()
        if torsions is None:
            torsions = (ALANINE_DIPEPTIDE_PHI_PSI if molecule == "alanine-dipeptide" else
                        rotatable_torsions(self._reference))
        self.torsions = [list(map(int, t)) for t in torsions]
        self.k = len(self.torsions)
        if self.k == 0:
            raise BoltzmatchError(f"{molecule}: no rotatable bonds (give torsions as atom quadruples)")
        if any(len(t) != 4 or not all(0 <= i < len(self._reference) for i in t) for t in self.torsions):
            raise BoltzmatchError(f"{molecule}: torsions must be quadruples of atom indices below "
                                  f"{len(self._reference)}, got {self.torsions}")
        if self.bins**self.k > 200_000:
            raise BoltzmatchError(f"{self.bins}^{self.k} grid points are too many to enumerate")
        self.n_actions = self.bins + 1
        self.n_backward = self.bins
        self.max_length = self.k
        self.angles = np.linspace(-180.0, 180.0, self.bins, endpoint=False) + 180.0 / self.bins  # bin centres, °
        self._sides = [moving_side(self._reference, t[1], t[2]) for t in self.torsions]
        self.energies = self._energy_table()  # (bins,)*k in eV
        beta = 1.0 / (units.kB * self.temperature)
        # rigid rotations put atoms on top of each other (U up to 10⁷ eV); capping β(U − U_min) at
        # LOG_REWARD_FLOOR changes R/Z by < e⁻³⁰ per state and keeps float32 losses finite
        log_ratio = np.minimum(beta * (self.energies - self.energies.min()), -LOG_REWARD_FLOOR)
        self._log_reward_table = torch.as_tensor(-log_ratio.reshape(-1))

    def options(self) -> dict:
        return {"molecule": self.molecule, "bins": self.bins, "temperature": self.temperature,
                "calculator": self.calculator, "torsions": self.torsions}

    def _molecule(self) -> Atoms:
        from ..data.systems import build_system

        return build_system(self.molecule)

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
        if Path(self.calculator).exists():
            from ..simulate.calculator import BoltzmatchCalculator

            calculator = BoltzmatchCalculator(self.calculator)
        else:
            from ..data.reference_md import make_calculator

            calculator = make_calculator(self.calculator, self.molecule)
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

    def state_keys(self, states):
        return self.index(states)

    def index(self, states):
        level = self._set(states)
        offsets = torch.tensor([sum(self.bins**j for j in range(i)) for i in range(self.k + 1)])
        weights = self.bins ** torch.arange(self.k - 1, -1, -1)
        # prefix codes: the set torsions as a base-`bins` number of `level` digits
        codes = (states.clamp_min(0) * weights).sum(1) // (self.bins ** (self.k - level))
        return offsets[level] + codes

    def grid(self, values: torch.Tensor) -> np.ndarray:
        """Values over all states → the (bins,)*k array of the full assignments."""
        return values[-self.bins**self.k:].reshape((self.bins,) * self.k).cpu().numpy()
