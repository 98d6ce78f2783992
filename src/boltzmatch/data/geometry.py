"""Bonds, bond lengths, angles and interatomic distances of structures (Å, radians).

Bonds follow the stability criterion of Fu et al. ("Forces are not enough", arXiv 2210.07237):
atoms i, j are bonded when their distance in the *first* frame is below the sum of ASE's
natural cutoffs (covalent radii) times ``mult`` = 1.2. With ``mult`` = 1 the radii sums sit at
or below equilibrium bond lengths (C–H 1.07 vs 1.09 Å, C–O 1.42 vs 1.43 Å), so most bonds of
a thermal frame would be missed; 1.2 still excludes every non-bonded contact of organic molecules.
Periodic bonds keep the cell offset they had in that frame, so unwrapped MD positions are
measured correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms


def composition_key(atoms: Atoms) -> tuple[int, ...]:
    """Atomic numbers in order: frames of the same molecule share bonds and reference lengths."""
    return tuple(int(z) for z in atoms.numbers)


def group_by_composition(structures: Iterable[Atoms]) -> dict[tuple[int, ...], list[Atoms]]:
    """Structures grouped by :func:`composition_key`, in order of first appearance."""
    groups: dict[tuple[int, ...], list[Atoms]] = {}
    for atoms in structures:
        groups.setdefault(composition_key(atoms), []).append(atoms)
    return groups


@dataclass(frozen=True)
class Bonds:
    """Bonded pairs of one structure: atom indices ``i``, ``j`` (n_bonds,) and cell offsets
    ``offsets`` (n_bonds, 3), integers; the vector of bond k is x[j] − x[i] + offsets[k] @ cell."""

    i: np.ndarray
    j: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    def labels(self, numbers: np.ndarray) -> list[str]:
        """Element pair of each bond, e.g. 'C-H' (alphabetical order)."""
        from ase.data import chemical_symbols

        return ["-".join(sorted((chemical_symbols[numbers[a]], chemical_symbols[numbers[b]])))
                for a, b in zip(self.i, self.j, strict=True)]


def find_bonds(atoms: Atoms, mult: float = 1.2) -> Bonds:
    """Bonds of ``atoms`` from ASE's natural cutoffs (covalent radii × ``mult``), each pair once."""
    from ase.neighborlist import NeighborList, natural_cutoffs

    nl = NeighborList(natural_cutoffs(atoms, mult=mult), self_interaction=False, bothways=False, skin=0.0)
    nl.update(atoms)
    i_list, j_list, o_list = [], [], []
    for a in range(len(atoms)):
        neighbors, offsets = nl.get_neighbors(a)
        for b, off in zip(neighbors, offsets, strict=True):
            i_list.append(a)
            j_list.append(int(b))
            o_list.append(off)
    return Bonds(np.asarray(i_list, dtype=int), np.asarray(j_list, dtype=int),
                 np.asarray(o_list, dtype=int).reshape(-1, 3))


def is_extended(atoms: Atoms, bonds: Bonds | None = None) -> bool:
    """True when a bonded network of ``atoms`` runs through its periodic boundaries into its own images (a
    crystal, a surface, a polymer chain): following the bonds from an atom leads back to an image of it. A
    molecule in a periodic box, wrapped across the boundary or not, is not extended."""
    bonds = find_bonds(atoms) if bonds is None else bonds
    if not atoms.pbc.any() or len(bonds) == 0:
        return False
    neighbours: dict[int, list[tuple[int, np.ndarray]]] = {}
    for a, b, off in zip(bonds.i, bonds.j, bonds.offsets, strict=True):
        neighbours.setdefault(int(a), []).append((int(b), off))
        neighbours.setdefault(int(b), []).append((int(a), -off))
    image: dict[int, np.ndarray] = {}  # the cell each atom's unwrapped copy lies in, along the bonds walked
    for root in neighbours:
        if root in image:
            continue
        image[root], stack = np.zeros(3, dtype=int), [root]
        while stack:
            a = stack.pop()
            for b, off in neighbours[a]:
                if b not in image:
                    image[b] = image[a] + off
                    stack.append(b)
                elif not np.array_equal(image[b], image[a] + off):
                    return True  # two paths reach atom b in different cells: the network wraps around
    return False


def bond_lengths(structures: Sequence[Atoms], bonds: Bonds, *, minimum_image: bool = False) -> np.ndarray:
    """(n_frames, n_bonds) bond lengths in Å of frames that share the first frame's atom order.
    ``minimum_image``: each bond vector by the minimum image of every frame, not by the offsets ``bonds`` found
    (a molecule in a periodic box whose frames a code wrapped into the cell; not for cells narrower than twice
    a bond, where a bond may join an atom to its own image)."""
    pos = np.stack([a.positions for a in structures])
    cells = np.stack([np.asarray(a.cell) for a in structures])
    shift = np.einsum("bk,fkl->fbl", bonds.offsets.astype(float), cells)
    vec = pos[:, bonds.j] - pos[:, bonds.i] + shift
    if minimum_image and structures[0].pbc.any():
        periodic = np.asarray(structures[0].pbc, dtype=float)
        full = np.stack([np.asarray(a.cell.complete()) for a in structures])  # no zero vector on an open axis
        fractional = np.einsum("fbk,fkl->fbl", vec, np.linalg.inv(full))
        vec = np.einsum("fbk,fkl->fbl", fractional - np.round(fractional) * periodic, full)
    return np.linalg.norm(vec, axis=-1)


def bond_angles(structures: Sequence[Atoms], bonds: Bonds) -> np.ndarray:
    """(n_frames, n_angles) angles in radians between bonds that share an atom (molecules:
    the cell offsets are applied, so periodic bonds work too)."""
    pos = np.stack([a.positions for a in structures])
    cells = np.stack([np.asarray(a.cell) for a in structures])
    shift = np.einsum("bk,fkl->fbl", bonds.offsets.astype(float), cells)
    vec = pos[:, bonds.j] - pos[:, bonds.i] + shift  # from i to j
    # every bond seen from both ends: (centre, vector to the other atom)
    centres = np.concatenate([bonds.i, bonds.j])
    vectors = np.concatenate([vec, -vec], axis=1)
    pairs = [(a, b) for a in range(len(centres)) for b in range(a + 1, len(centres)) if centres[a] == centres[b]]
    if not pairs:
        return np.zeros((len(structures), 0))
    a_idx, b_idx = np.asarray(pairs).T
    u, v = vectors[:, a_idx], vectors[:, b_idx]
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def pair_distances(structures: Sequence[Atoms]) -> np.ndarray:
    """(n_frames, n(n−1)/2) all interatomic distances in Å, pairs i < j in row-major order (minimum
    image for periodic cells). Frames of one size without periodicity go as one array: the 240,000
    frames of a 32-replica 750-ps judge take seconds instead of minutes."""
    if not structures:
        return np.zeros((0, 0))
    n = len(structures[0])
    i, j = np.triu_indices(n, k=1)
    if all(len(a) == n and not a.pbc.any() for a in structures):
        pos = np.stack([a.positions for a in structures])
        return np.linalg.norm(pos[:, j] - pos[:, i], axis=-1)
    out = []
    for atoms in structures:
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        out.append(d[np.triu_indices(len(atoms), k=1)])
    return np.stack(out)


# φ = C(ACE)–N–Cα–C and ψ = N–Cα–C–N(NME) in the atom order of openmmtools' alanine dipeptide
# (ACE: HH31 CH3 HH32 HH33 C O; ALA: N H CA HA CB HB1 HB2 HB3 C O; NME: N H C H1 H2 H3)
ALANINE_DIPEPTIDE_PHI_PSI = ((4, 6, 8, 14), (6, 8, 14, 16))
_ALANINE_DIPEPTIDE_SYMBOLS = "HCHHCONHCHCHHHCONHCHHH"


def dihedral_angles(structures: Sequence[Atoms], quads: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """(n_frames, n_quads) dihedral angles in radians on (−π, π] (IUPAC sign convention)."""
    x = np.stack([a.positions for a in structures])
    out = np.empty((len(structures), len(quads)))
    for k, (a, b, c, d) in enumerate(quads):
        b0, b1, b2 = x[:, a] - x[:, b], x[:, c] - x[:, b], x[:, d] - x[:, c]
        b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
        v = b0 - (b0 * b1n).sum(-1, keepdims=True) * b1n
        w = b2 - (b2 * b1n).sum(-1, keepdims=True) * b1n
        out[:, k] = np.arctan2((np.cross(b1n, v) * w).sum(-1), (v * w).sum(-1))
    return out


def ramachandran(structures: Sequence[Atoms]) -> np.ndarray | None:
    """(n_frames, 2) φ, ψ in radians when the structures are alanine dipeptide in openmmtools'
    atom order, else None."""
    if not structures or "".join(structures[0].get_chemical_symbols()) != _ALANINE_DIPEPTIDE_SYMBOLS:
        return None
    return dihedral_angles(structures, ALANINE_DIPEPTIDE_PHI_PSI)
