"""The live stability checks: the graph and bond criteria, non-finite values, runaway temperature."""

import numpy as np
from ase.build import molecule

from boltzmatch.simulate.stability import BondReference, StabilityMonitor
from state_helpers import state_of


def hydroxyl(ethanol):
    """Indices of the O atom and the H atom bonded to it."""
    o = int(np.flatnonzero(ethanol.numbers == 8)[0])
    d = ethanol.get_distances(o, range(len(ethanol)))
    h = min((i for i in range(len(ethanol)) if ethanol.numbers[i] == 1), key=lambda i: d[i])
    return o, h


def test_each_failure_is_reported_for_its_own_replica_only():
    ethanol = molecule("CH3CH2OH")
    water = molecule("H2O")
    reference = BondReference([ethanol, water])
    replicas = [ethanol.copy() for _ in range(4)] + [water.copy()]
    monitor = StabilityMonitor(replicas, reference, max_deviation=0.5, max_temperature=1000.0, criterion="bond")
    state = state_of(replicas)
    assert monitor.check(state) == [None] * 5
    # replica 1: stretch the O-H bond by 0.6 Å; replica 2: NaN force; replica 3: hot; water fine
    o, h = hydroxyl(ethanol)
    n = len(ethanol)
    direction = state.positions[n + h] - state.positions[n + o]
    state.positions[n + h] += 0.6 * direction / direction.norm()
    state.forces[2 * n + 3, 0] = float("nan")
    state.velocities[3 * n:4 * n] = 100.0
    assert monitor.check(state) == [None, "bond", "non-finite", "temperature", None]


def test_a_stretch_below_the_threshold_is_not_a_collapse():
    ethanol = molecule("CH3CH2OH")
    monitor = StabilityMonitor([ethanol], BondReference([ethanol]), max_deviation=0.5, criterion="bond")
    state = state_of([ethanol])
    o, h = hydroxyl(ethanol)
    direction = state.positions[h] - state.positions[o]
    state.positions[h] += 0.45 * direction / direction.norm()
    assert monitor.check(state) == [None]
    assert abs(monitor.max_bond_deviation(state.positions).item() - 0.45) < 1e-9


def test_set_active_follows_removed_replicas():
    ethanol = molecule("CH3CH2OH")
    replicas = [ethanol.copy() for _ in range(3)]
    replicas[2].positions[hydroxyl(ethanol)[1]] += [0.0, 0.0, 3.0]  # replica 2 starts broken
    monitor = StabilityMonitor(replicas, BondReference([ethanol]), criterion="bond")
    monitor.set_active([0, 2])
    state = state_of([replicas[0], replicas[2]])
    assert monitor.check(state) == [None, "bond"]


def test_auto_picks_graph_for_molecules_and_rdf_for_periodic_structures():
    import pytest
    from ase.build import bulk

    from boltzmatch.errors import BoltzmatchError
    from boltzmatch.simulate.stability import resolve_criterion

    ethanol, copper = molecule("CH3CH2OH"), bulk("Cu", "fcc", a=3.6, cubic=True)
    boxed = ethanol.copy()  # a molecule in a periodic box, as DFT codes write it, wrapped across the boundary
    boxed.cell, boxed.pbc = [8.0, 8.0, 8.0], True
    boxed.positions += [7.5, 0.0, 0.0]
    boxed.wrap()
    assert resolve_criterion("auto", [ethanol, ethanol]) == "graph"
    assert resolve_criterion("auto", [boxed]) == "graph"
    assert resolve_criterion("auto", [copper]) == "rdf"
    assert resolve_criterion("bond", [copper]) == "bond"  # a named criterion is kept
    with pytest.raises(BoltzmatchError, match="start.xyz: 1 of 2 systems are extended"):
        resolve_criterion("auto", [ethanol, copper], "start.xyz")
    with pytest.raises(BoltzmatchError, match="must be one of auto, graph, bond, rdf"):
        resolve_criterion("bonds", [ethanol])


def test_a_reference_check_names_a_few_bonds_and_counts_the_rest():
    from ase.build import bulk

    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    shaken = crystal.copy()
    shaken.positions += np.random.default_rng(0).normal(scale=0.6, size=shaken.positions.shape)
    line, = BondReference([crystal, shaken]).check_reference("bond", 0.2)
    names = line.split("(")[1].split(" and ")[0].split(", ")
    assert len(names) == 6 and " more beyond 0.2 Å" in line


def test_a_network_through_the_boundaries_is_extended_and_a_boxed_molecule_is_not():
    from ase.build import bulk, fcc111

    from boltzmatch.data.geometry import is_extended

    water = molecule("H2O")
    assert not is_extended(water)
    water.cell, water.pbc = [2.6, 2.6, 2.6], True  # images 2.6 Å apart: no bond between them
    water.positions += [2.3, 0.0, 0.0]
    water.wrap()
    assert not is_extended(water)
    assert is_extended(bulk("Cu", "fcc", a=3.6))  # one atom bonded to its own images
    assert is_extended(fcc111("Al", size=(2, 2, 3), vacuum=6.0))  # extended in two directions only


def test_a_molecule_wrapped_across_a_surface_cell_keeps_its_bonds():
    """pbc (T, T, F) with no third cell vector, as ASE writes slabs and surface adsorbates."""
    ethanol = molecule("CH3CH2OH")
    boxed = ethanol.copy()
    boxed.cell, boxed.pbc = [10.0, 10.0, 0.0], [True, True, False]
    boxed.positions += [9.5, 0.0, 5.0]
    boxed.wrap()
    reference = BondReference([boxed, boxed.copy()])
    key = next(iter(reference.mean_length))
    np.testing.assert_allclose(np.sort(reference.mean_length[key]),
                               np.sort(BondReference([ethanol]).mean_length[key]), atol=1e-9)
    assert reference.check_reference("graph") == [] and reference.graphs_for(boxed, 0.5) is not None
