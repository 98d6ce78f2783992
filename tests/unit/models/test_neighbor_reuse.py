"""Candidate pairs found with a skin and reused between MD steps give exactly the edges of a fresh search."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model
from boltzmatch.models.neighbors import PairList, find_pairs, neighbor_list
from boltzmatch.simulate import ModelForces
from helpers import ReadBacks

CUTOFF, SKIN = 3.0, 1.0


def _structures(periodic: bool = True):
    """Two molecules and a crystal; without it (``periodic=False``) a lone atom instead, and a fresh search is
    the molecules-only path that keeps its candidates without a second cutoff check."""
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=2)
    return [molecule("CH3CH2OH"), molecule("C6H6"), crystal if periodic else Atoms("H")]


def _assert_same_edges(a, b):
    assert torch.equal(a.i, b.i) and torch.equal(a.j, b.j)
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.unit_shifts, b.unit_shifts)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("half", [False, True])
def test_reused_pairs_give_the_edges_of_a_fresh_search_while_atoms_move_less_than_half_the_skin(half, periodic):
    batch = AtomsBatch.from_atoms(_structures(periodic), dtype=torch.float64)
    pairs = find_pairs(batch, CUTOFF + SKIN)
    rng = np.random.default_rng(0)
    # every atom moves by 0.45 Å (< skin/2): some pairs cross the cutoff in both directions
    step = torch.as_tensor(rng.normal(size=batch.positions.shape))
    step = 0.45 * step / torch.linalg.vector_norm(step, dim=1, keepdim=True)
    moved = batch.with_positions(batch.positions + step)
    reused = neighbor_list(AtomsBatch(**{**moved.__dict__, "pairs": pairs}), CUTOFF, half=half)
    fresh = neighbor_list(moved, CUTOFF, half=half)
    before = neighbor_list(batch, CUTOFF, half=half)
    assert len(fresh.i) != len(before.i) or not torch.equal(fresh.i, before.i)  # the move changed the list
    _assert_same_edges(reused, fresh)
    assert pairs.covers(moved, CUTOFF)


@pytest.mark.parametrize("periodic", [True, False])
def test_half_list_is_the_half_mask_of_the_full_list(periodic):
    batch = AtomsBatch.from_atoms(_structures(periodic), dtype=torch.float64)
    full = neighbor_list(batch, CUTOFF)
    half = neighbor_list(batch, CUTOFF, half=True)
    keep = full.half()
    assert torch.equal(half.i, full.i[keep]) and torch.equal(half.j, full.j[keep])
    assert torch.equal(half.vectors, full.vectors[keep])


def test_pairs_stop_covering_once_an_atom_moves_more_than_half_the_skin_or_the_cutoff_grows():
    batch = AtomsBatch.from_atoms(_structures(), dtype=torch.float64)
    pairs = find_pairs(batch, CUTOFF + SKIN)
    assert isinstance(pairs, PairList) and pairs.covers(batch, CUTOFF)
    assert not pairs.covers(batch, CUTOFF + SKIN + 0.1)
    far = batch.positions.clone()
    far[3, 0] += 0.51 * SKIN
    assert not pairs.covers(batch.with_positions(far), CUTOFF)
    # a cell scaled along its axes is covered while every distance it shrinks stays within the skin's reach (a
    # barostat's cells), whether or not the positions moved with it; a shear, or a compression beyond, is not
    for factor, covered in ((1.01, True), ([1.0, 1.0, 0.97], True), (0.8, False), ([1.0, 0.8, 1.0], False)):
        scaled = AtomsBatch(**{**batch.__dict__, "cell": batch.cell * torch.tensor(factor, dtype=torch.float64)})
        assert pairs.covers(scaled, CUTOFF) is covered, factor
        if covered:  # what the reused pairs give is what a search there gives
            _assert_same_edges(neighbor_list(AtomsBatch(**{**scaled.__dict__, "pairs": pairs}), CUTOFF),
                               neighbor_list(scaled, CUTOFF))
    sheared = batch.cell.clone()
    sheared[-1, 0, 1] += 0.05
    assert not pairs.covers(AtomsBatch(**{**batch.__dict__, "cell": sheared}), CUTOFF)
    # stale pairs on a batch are ignored, not trusted: a fresh search finds the new neighbour
    far[3] = batch.positions[4] + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    stale = AtomsBatch(**{**batch.with_positions(far).__dict__, "pairs": find_pairs(batch, CUTOFF)})
    _assert_same_edges(neighbor_list(stale, CUTOFF), neighbor_list(batch.with_positions(far), CUTOFF))


def test_an_answer_is_remembered_only_for_the_same_unchanged_tensors():
    """covers() remembers its last yes (an MD step asks twice); a change in place must still be seen."""
    batch = AtomsBatch.from_atoms(_structures(), dtype=torch.float64)
    pairs = find_pairs(batch, CUTOFF + SKIN)
    positions = batch.positions.clone()
    moved = batch.with_positions(positions)
    assert pairs.covers(moved, CUTOFF)
    positions[3, 0] += 0.51 * SKIN  # in place: the same tensor object, a new version
    assert not pairs.covers(moved, CUTOFF)
    positions[3, 0] -= 0.51 * SKIN
    assert pairs.covers(moved, CUTOFF)
    moved.cell[-1, 0, 1] += 0.05  # the periodic cell sheared in place
    assert not pairs.covers(moved, CUTOFF)


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_an_md_step_reads_back_from_the_device_once_without_a_search(name):
    """On a GPU every read-back stalls the step until the queue drains. A step that reuses its pairs reads back
    two numbers in one transfer: the skin check's largest move and the count of pairs within the cutoff (it was
    two transfers before, and ten before that: the pair check ran twice, the element check and MACE's element
    grouping ran every step)."""
    torch.manual_seed(0)
    config = {"schnet": {"n_features": 16, "n_interactions": 1, "cutoff": CUTOFF},
              "painn": {"n_features": 16, "n_interactions": 1, "cutoff": CUTOFF},
              "mace": {"hidden_irreps": "8x0e + 8x1o", "max_ell": 1, "correlation": 2, "r_max": CUTOFF}}[name]
    model = build_model({"name": name, "elements": [1, 6, 8], **config})
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH")] * 4)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc, skin=SKIN)
    positions = batch.positions.double()
    forces(positions)
    for _ in range(3):
        positions = positions + 1e-3
        with ReadBacks() as reads:
            forces(positions)
        assert forces.searches == 1 and reads.calls == ["tolist"]


def test_md_forces_with_reused_pairs_equal_fresh_evaluations_bit_for_bit():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": CUTOFF,
                         "dtype": "float64"})
    batch = AtomsBatch.from_atoms(_structures()[:2] * 2, dtype=torch.float64)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc, skin=SKIN)
    rng = np.random.default_rng(1)
    positions = batch.positions.clone()
    for _ in range(40):  # a random walk of 0.03 Å steps: the list is rebuilt now and then, not every step
        positions = positions + 0.03 * torch.as_tensor(rng.normal(size=positions.shape))
        energy, f = forces(positions)
        fresh = batch.with_positions(positions.clone().requires_grad_(True))
        reference = forces.evaluate(fresh)  # the model MD evaluates (its filters tabulated)
        (grad,) = torch.autograd.grad(reference.sum(), fresh.positions)
        assert torch.equal(energy, reference.detach()) and torch.equal(f, -grad)
    assert 1 < forces.searches < 40
    assert forces.model_seconds > 0 and forces.search_seconds > 0


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_a_search_that_finds_every_pair_of_each_molecule_is_kept_for_good_and_read_nothing_back(name):
    """Ethanol's 72 directed pairs are all within the default 5 Å + 1 Å skin: the list cannot grow, so it is kept
    with no skin check, whatever the moves, and models that mask beyond their cutoff read nothing back (the skin
    check's two numbers were read every step); the forces are those of a fresh search to the last bit."""
    torch.manual_seed(0)
    config = {"schnet": {"n_features": 16, "n_interactions": 1},
              "painn": {"n_features": 16, "n_interactions": 1},
              "mace": {"hidden_irreps": "8x0e + 8x1o", "max_ell": 1, "correlation": 2}}[name]
    model = build_model({"name": name, "elements": [1, 6, 8], "dtype": "float64", **config})
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH")] * 3, dtype=torch.float64)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    rng = np.random.default_rng(2)
    positions = batch.positions.clone()
    forces(positions)
    assert forces.pairs.complete and len(forces.pairs.i) == 3 * 72
    for _ in range(5):  # 0.2 Å steps: past half the skin after the second
        positions = positions + 0.2 * torch.as_tensor(rng.normal(size=positions.shape))
        with ReadBacks() as reads:
            energy, f = forces(positions)
        assert reads.calls == []
        fresh = batch.with_positions(positions.clone().requires_grad_(True))
        reference = forces.evaluate(fresh)
        (grad,) = torch.autograd.grad(reference.sum(), fresh.positions)
        if name == "mace":
            torch.testing.assert_close(f, -grad, rtol=0, atol=1e-12)
        else:
            assert torch.equal(energy, reference.detach()) and torch.equal(f, -grad)
    assert forces.searches == 1


def test_a_search_that_misses_a_pair_keeps_the_skin_check():
    """Benzene's para hydrogens are ~5 Å apart: at a 2 Å cutoff + 1 Å skin the list misses pairs and stays a
    list within a skin, searched again once atoms move past half of it."""
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 8, "n_interactions": 1, "cutoff": 2.0, "dtype": "float64"})
    batch = AtomsBatch.from_atoms([molecule("C6H6")], dtype=torch.float64)
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    forces(batch.positions)
    assert not forces.pairs.complete
    forces(batch.positions + torch.tensor([[0.6, 0.0, 0.0]] + [[0.0, 0.0, 0.0]] * 11, dtype=torch.float64))
    assert forces.searches == 2


def test_tile_repeats_structures_one_batch_after_another():
    batch = AtomsBatch.from_atoms([molecule("H2O"), molecule("CH4")], dtype=torch.float64)
    twice = batch.tile(2)
    assert twice.n_structures == 4 and twice.n_atoms == 16
    assert twice.structure_index.tolist() == [0] * 3 + [1] * 5 + [2] * 3 + [3] * 5
    assert torch.equal(twice.positions[8:], batch.positions) and torch.equal(twice.cell[2:], batch.cell)
    assert [a.get_chemical_formula() for a in twice.to_atoms()] == ["H2O", "CH4", "H2O", "CH4"]


def test_compiled_md_gives_the_plain_trajectory_and_says_so(tmp_path):
    """simulate --compile: the model under torch.compile, the same trajectory as the plain model (float32 rounding)."""
    import csv

    import boltzmatch
    from boltzmatch.simulate.summary import format_simulation

    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 8, "n_interactions": 1, "cutoff": CUTOFF,
                         "elements": [1, 6, 8]})
    energies, summaries = {}, {}
    for compiled in (False, True):
        out = tmp_path / str(compiled)
        summaries[compiled] = boltzmatch.simulate(model, [molecule("CH3CH2OH")], out=out, replicas=2, time=0.005,
                                                  interval=5, check_interval=5, compile_forces=compiled,
                                                  progress=False, device="cpu")
        with open(out / "thermo.csv") as handle:
            energies[compiled] = [float(row["potential_eV"]) for row in csv.DictReader(handle)]
    assert len(energies[True]) == 6 and energies[True] == pytest.approx(energies[False], rel=1e-5, abs=1e-5)
    assert summaries[True]["timing"]["compiled"] and not summaries[False]["timing"]["compiled"]
    assert "model compiled" in format_simulation(summaries[True])
