"""The molecular-graph collapse criterion: a molecule collapses when its bond graph becomes one its
reference never visits, up to relabelling atoms of the same element, and stays so for a while.

Fu et al.'s bond rule (a bond more than 0.5 Å from its reference mean) calls chemistry a collapse: in
GFN2-xTB malonaldehyde at 500 K the hydroxyl proton moves to the other oxygen, every bond rule fires,
and yet the molecule is whole. Here a frame's graph has an edge i–j when

* i–j is a bond of the reference's first frame and is shorter than its reference mean + ``max_deviation``
  (0.5 Å: a reference bond breaks where Fu's rule says it does), or
* i and j are closer than the sum of their ASE natural cutoffs × 1.2 (a new bond forms where
  :func:`~boltzmatch.data.geometry.find_bonds` would have found one).

A proton that moved to the other oxygen gives a graph isomorphic to the start (the same molecule);
a broken C–C bond or two atoms fused give a graph the reference never visits. Transition states
(the proton between two oxygens, bonded to both or to neither for a few fs) are not collapses either:
a non-visited graph counts only once it persists ``persist`` fs (default 50). Periodic structures keep
the bond rule: a crystal's bond graph is not a molecule's.

Isomorphism is decided here (colour refinement on the two graphs together, then individualisation and
backtracking), not with networkx: importing networkx beside tblite made tblite's None-refcount leak
crash in-process xTB MD (Python 3.11, where None is not immortal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from ..data.geometry import bond_lengths, find_bonds

#: fs a non-visited graph must last before it counts as a collapse (a proton transfer's transition
#: state lives ~10–30 fs at 500 K)
DEFAULT_PERSIST_FS = 50.0


Graph = tuple[frozenset, ...]  # per atom, the atoms bonded to it


def _refine(colours: list[int], adjacency: list[frozenset]) -> list[int]:
    """Colour refinement (1-WL) to a stable partition; colour ids are ranks of (colour, neighbour colours)."""
    while True:
        signatures = [(colours[v], tuple(sorted(colours[u] for u in adjacency[v]))) for v in range(len(colours))]
        ranks = {signature: rank for rank, signature in enumerate(sorted(set(signatures)))}
        refined = [ranks[signature] for signature in signatures]
        if len(ranks) == len(set(colours)):
            return refined
        colours = refined


def isomorphic(first: Graph, second: Graph, labels: Sequence[int]) -> bool:
    """Whether two graphs on atoms with ``labels`` (atomic numbers, the same for both) are isomorphic by
    a relabelling that keeps every atom's element."""
    n = len(labels)
    union = list(first) + [frozenset(u + n for u in row) for row in second]
    return _match([int(z) for z in labels] * 2, union, n)


def _match(colours: list[int], union: list[frozenset], n: int) -> bool:
    colours = _refine(colours, union)
    if sorted(colours[:n]) != sorted(colours[n:]):
        return False
    classes: dict[int, list[int]] = {}
    for v in range(n):
        classes.setdefault(colours[v], []).append(v)
    ambiguous = next((members for members in classes.values() if len(members) > 1), None)
    if ambiguous is None:  # discrete: the colours give the only candidate map
        image = {colours[n + w]: w for w in range(n)}
        mapping = [image[colours[v]] for v in range(n)]
        return all(frozenset(mapping[u] for u in union[v]) == frozenset(u - n for u in union[n + mapping[v]])
                   for v in range(n))
    v = ambiguous[0]
    fresh = max(colours) + 1
    for w in (x for x in range(n, 2 * n) if colours[x] == colours[v]):
        trial = list(colours)
        trial[v] = trial[w] = fresh
        if _match(trial, union, n):
            return True
    return False


class MoleculeGraphs:
    """One molecule's pair cutoffs (Å) and the graph classes its reference frames visit."""

    def __init__(self, frames: Sequence[Atoms], max_deviation: float):
        from ase.neighborlist import natural_cutoffs

        first = frames[0]
        self.numbers = first.numbers.copy()
        n = len(first)
        radii = np.asarray(natural_cutoffs(first, mult=1.2))
        cut = radii[:, None] + radii[None, :]
        bonds = find_bonds(first)
        mean = bond_lengths(frames, bonds, minimum_image=True).mean(axis=0)  # only molecules come here
        widened = np.maximum(cut[bonds.i, bonds.j], mean + max_deviation)
        cut[bonds.i, bonds.j] = cut[bonds.j, bonds.i] = widened
        self.upper = np.triu_indices(n, k=1)
        self.cut = torch.as_tensor(cut[self.upper], dtype=torch.float64)
        # a molecule in a periodic box: pair vectors by the minimum image (the box is far wider than the molecule)
        self.cell = (torch.as_tensor(np.asarray(first.cell.complete()), dtype=torch.float64) if first.pbc.any()
                     else None)  # complete(): an open axis gets a unit vector, so the cell inverts
        self.periodic = torch.as_tensor(first.pbc, dtype=torch.float64)
        keys = self.keys(torch.as_tensor(np.stack([a.positions for a in frames]), dtype=torch.float64))
        self.start = keys[0]
        self.classes: list[Graph] = []
        self.frame_class = [self._class_of(k, add=True) for k in keys]
        self._visited: dict[bytes, bool] = {k: True for k in set(keys)}

    def keys(self, positions: torch.Tensor, cells: torch.Tensor | None = None) -> list[bytes]:
        """The graph of each of (k, n_atoms, 3) positions (Å) as bytes of its packed upper triangle; ``cells``
        (k, 3, 3) Å where a barostat changed the boxes (default: the reference's box)."""
        i, j = (torch.as_tensor(x) for x in self.upper)
        vectors = positions[:, j] - positions[:, i]
        if self.cell is not None:
            cell = self.cell.to(positions) if cells is None else cells.to(positions)
            fractional = vectors @ torch.linalg.inv(cell)
            fractional = fractional - torch.round(fractional) * self.periodic.to(positions)
            vectors = fractional @ cell
        distances = vectors.norm(dim=-1)
        adjacency = (distances < self.cut.to(positions)).cpu().numpy()
        return [row.tobytes() for row in np.packbits(adjacency, axis=1)]

    def graph(self, key: bytes) -> Graph:
        """Per atom, the atoms bonded to it in the graph ``key``."""
        edges = np.unpackbits(np.frombuffer(key, dtype=np.uint8))[:len(self.upper[0])].astype(bool)
        neighbours: list[set[int]] = [set() for _ in self.numbers]
        for a, b in zip(self.upper[0][edges].tolist(), self.upper[1][edges].tolist(), strict=True):
            neighbours[a].add(b)
            neighbours[b].add(a)
        return tuple(frozenset(row) for row in neighbours)

    def _class_of(self, key: bytes, add: bool) -> int | None:
        g = self.graph(key)
        for index, known in enumerate(self.classes):
            if isomorphic(g, known, self.numbers):
                return index
        if not add:
            return None
        self.classes.append(g)
        return len(self.classes) - 1

    def visited(self, key: bytes) -> bool:
        """Whether the reference visits this graph or one isomorphic to it (element-preserving)."""
        if key not in self._visited:
            self._visited[key] = self._class_of(key, add=False) is not None
        return self._visited[key]

    def changes(self, key: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Bonds (atom index pairs) the graph ``key`` lacks and adds against the start graph."""
        now, start = self.graph(key), self.graph(self.start)
        edges = [{(a, b) for a, row in enumerate(g) for b in row if a < b} for g in (now, start)]
        return sorted(edges[1] - edges[0]), sorted(edges[0] - edges[1])

    def describe(self, key: bytes) -> str:
        """'broken C1–C2; formed O3–H8' for the graph ``key`` against the start graph."""
        from ase.data import chemical_symbols

        def name(pair):
            return "–".join(f"{chemical_symbols[self.numbers[a]]}{a}" for a in pair)

        broken, formed = self.changes(key)
        parts = ([f"broken {', '.join(map(name, broken))}"] if broken else []) + (
            [f"formed {', '.join(map(name, formed))}"] if formed else [])
        return "; ".join(parts) or "same bonds"
