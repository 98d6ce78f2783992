"""The molecular-graph criterion (issue 36): chemistry the molecule can do is not a collapse, a broken
molecule is, a transition state is forgiven while it lasts less than ``persist``; the reference is
judged by the criterion before anything is judged against it."""

import itertools

import numpy as np
import pytest
from ase import Atoms

from boltzmatch.data.geometry import find_bonds
from boltzmatch.data.systems import build_system
from boltzmatch.simulate.graphs import isomorphic
from boltzmatch.simulate.stability import BondReference, StabilityMonitor
from state_helpers import state_of


def malonaldehyde() -> Atoms:
    return build_system("malonaldehyde")


def _hydroxyl(atoms: Atoms) -> tuple[int, int, int]:
    """(O bonded to the hydroxyl H, that H, the other O)."""
    bonds = find_bonds(atoms)
    oxygens = np.flatnonzero(atoms.numbers == 8)
    for a, b in zip(bonds.i, bonds.j, strict=True):
        pair = {int(a), int(b)}
        o = pair & set(oxygens.tolist())
        h = {x for x in pair if atoms.numbers[x] == 1}
        if o and h:
            (o,), (h,) = o, h
            other = int(next(x for x in oxygens if x != o))
            return o, h, other
    raise AssertionError("no O-H bond")


def proton_transferred(atoms: Atoms) -> Atoms:
    """The hydroxyl proton moved to the other oxygen: mirrored through the plane that bisects O···O."""
    out = atoms.copy()
    o, h, other = _hydroxyl(atoms)
    u = out.positions[other] - out.positions[o]
    u /= np.linalg.norm(u)
    middle = 0.5 * (out.positions[o] + out.positions[other])
    out.positions[h] -= 2 * np.dot(out.positions[h] - middle, u) * u
    return out


def carbon_bond_broken(atoms: Atoms) -> Atoms:
    """One C–C bond pulled 1.5 Å apart by moving the fragment on one side of it rigidly."""
    out = atoms.copy()
    bonds = find_bonds(atoms)
    a, b = next((int(x), int(y)) for x, y in zip(bonds.i, bonds.j, strict=True)
                if atoms.numbers[x] == 6 and atoms.numbers[y] == 6)
    edges = {(int(x), int(y)) for x, y in zip(bonds.i, bonds.j, strict=True)} - {(a, b), (b, a)}
    side, todo = {b}, [b]
    while todo:  # the atoms still connected to b
        v = todo.pop()
        for x, y in edges:
            for u, w in ((x, y), (y, x)):
                if u == v and w not in side:
                    side.add(w)
                    todo.append(w)
    side = sorted(side)
    direction = out.positions[b] - out.positions[a]
    out.positions[side] += 1.5 * direction / np.linalg.norm(direction)
    return out


def test_a_proton_transfer_is_not_a_collapse_and_a_broken_carbon_bond_is():
    start = malonaldehyde()
    replicas = [start.copy(), proton_transferred(start), carbon_bond_broken(start)]
    monitor = StabilityMonitor(replicas, BondReference([start]))  # the default criterion
    assert monitor.check(state_of(replicas)) == [None, None, "graph"]
    # Fu et al.'s bond rule calls the proton transfer a collapse
    bond_rule = StabilityMonitor(replicas, BondReference([start]), criterion="bond")
    assert bond_rule.check(state_of(replicas)) == [None, "bond", "bond"]


def test_a_check_runs_as_many_torch_operators_for_many_replicas_as_for_few():
    """On a GPU each operator is a kernel launch: the graph rule took one slice per replica (4,152 operators a
    check at 4,096 replicas, ~20 ms of launches every tenth step); it gathers each molecule's replicas at once."""
    from helpers import Kernels

    start = malonaldehyde()
    operators = {}
    for n in (4, 64):
        replicas = [start.copy(), proton_transferred(start), carbon_bond_broken(start), start.copy()] * (n // 4)
        monitor = StabilityMonitor(replicas, BondReference([start]))
        state = state_of(replicas)
        assert monitor.check(state) == [None, None, "graph", None] * (n // 4)
        with Kernels() as kernels:
            monitor.check(state)
        operators[n] = len(kernels.calls)
    assert operators[64] == operators[4]


def test_a_non_visited_graph_counts_once_it_lasts_persist_fs_and_from_when_it_began():
    start = malonaldehyde()
    broken = carbon_bond_broken(start)
    monitor = StabilityMonitor([broken], BondReference([start]), persist=50.0)
    state = state_of([broken])
    assert monitor.check(state, 0.100) == [None]  # the graph changed at 100 fs
    assert monitor.check(state, 0.140) == [None]
    assert monitor.check(state, 0.150) == ["graph"]
    assert monitor.collapse_times == [pytest.approx(0.150)] and monitor.onset[0] == pytest.approx(0.100)
    # a transient excursion that returns resets the clock
    monitor = StabilityMonitor([start], BondReference([start]), persist=50.0)
    assert monitor.check(state_of([broken]), 0.0) == [None]
    assert monitor.check(state_of([start]), 0.030) == [None]
    assert monitor.check(state_of([broken]), 0.060) == [None]
    assert monitor.check(state_of([broken]), 0.100) == [None]


def test_a_graph_the_reference_visits_is_not_a_collapse():
    start = malonaldehyde()
    bridged = proton_transferred(start)
    o, h, other = _hydroxyl(start)
    bridged.positions[h] = 0.5 * (start.positions[o] + start.positions[other])  # H between the oxygens
    without = StabilityMonitor([bridged], BondReference([start]))
    assert without.check(state_of([bridged])) == ["graph"]
    visited = StabilityMonitor([bridged], BondReference([start, bridged]))
    assert visited.check(state_of([bridged])) == [None]


def test_the_reference_is_judged_by_the_criterion_first():
    start = malonaldehyde()
    frames = [start.copy() for _ in range(18)] + [proton_transferred(start) for _ in range(2)]
    reference = BondReference(frames, "test.xyz")
    (line,) = reference.check_reference("bond", 0.5)
    assert "breaks the bond rule in 2 of 20 frames from frame 18" in line and "O0–H5" in line and "test.xyz" in line
    # a proton transfer leaves the bond graph's class as it was: nothing to report
    assert reference.check_reference("graph", 0.5) == []
    bridged = start.copy()
    o, h, other = _hydroxyl(start)
    bridged.positions[h] = 0.5 * (start.positions[o] + start.positions[other])
    (line,) = BondReference([*frames, bridged], "test.xyz").check_reference("graph", 0.5)
    assert "visits 2 bond graphs" in line and "1 of 21 frames, from frame 20" in line and "not collapses" in line
    assert BondReference([start] * 3).check_reference("graph") == []


def _graph(n, edges):
    rows = [set() for _ in range(n)]
    for a, b in edges:
        rows[a].add(b)
        rows[b].add(a)
    return tuple(frozenset(r) for r in rows)


def _brute_force(first, second, labels):
    n = len(labels)
    for perm in itertools.permutations(range(n)):
        if all(labels[perm[v]] == labels[v] for v in range(n)) and all(
                frozenset(perm[u] for u in first[v]) == second[perm[v]] for v in range(n)):
            return True
    return False


def test_isomorphism_agrees_with_enumerating_every_relabelling():
    # a hexagon against two triangles: every vertex has degree 2, colour refinement alone cannot tell
    hexagon = _graph(6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0)])
    triangles = _graph(6, [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)])
    assert not isomorphic(hexagon, triangles, [6] * 6) and isomorphic(hexagon, hexagon, [6] * 6)
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a in range(7) for b in range(a + 1, 7)]
    outcomes = []
    for _ in range(300):
        labels = rng.choice([1, 6, 8], size=7, p=[0.5, 0.3, 0.2]).tolist()
        first = _graph(7, [p for p in pairs if rng.random() < 0.35])
        if rng.random() < 0.5:  # the same graph with atoms of each element shuffled among themselves
            perm = list(range(7))
            for z in set(labels):
                members = [v for v in range(7) if labels[v] == z]
                for v, w in zip(members, rng.permutation(members), strict=True):
                    perm[v] = int(w)
            second = _graph(7, [(perm[a], perm[b]) for a in range(7) for b in first[a] if a < b])
        else:
            second = _graph(7, [p for p in pairs if rng.random() < 0.35])
        expected = _brute_force(first, second, labels)
        assert isomorphic(first, second, labels) == expected
        outcomes.append(expected)
    assert 100 < sum(outcomes) < 250  # both answers well represented


def test_a_molecule_across_the_boundary_of_a_barostat_box_keeps_its_graph():
    """A molecule split by the boundary of a box a barostat shrank from 10 to 9 Å: its graph in its own box is the
    start's; measured in the starting box, the minimum image of its split bonds is 1 Å off and the graph changes."""
    import torch

    molecule = malonaldehyde()
    molecule.set_cell([10.0, 10.0, 10.0])
    molecule.pbc = True
    molecule.center()
    monitor = StabilityMonitor([molecule], BondReference([molecule], "ref"), criterion="graph")
    shrunk = molecule.copy()
    shrunk.set_cell([9.0, 9.0, 9.0])
    shrunk.positions += [9.0 - shrunk.positions[:, 0].mean(), 0.0, 0.0]  # across the boundary at x = 9 Å
    shrunk.wrap()
    positions = torch.as_tensor(shrunk.positions)
    assert monitor.graph_keys(positions, torch.as_tensor(np.asarray(shrunk.cell))[None])[0] == monitor.graphs[0].start
    assert monitor.graph_keys(positions)[0] != monitor.graphs[0].start
