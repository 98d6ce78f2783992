"""Complete pairs for training batches (models/packed_pairs.PackedPairs.complete_pairs): every pair of each molecule,
so that batches of one molecule's frames have one shape per batch size, as CUDA graphs of the training step need.

Ethanol with a 2.5 Å cutoff stands for any molecule larger than its model's cutoff (aspirin at 5 Å): the pairs
within the cutoff then change in number from frame to frame, and so did every batch's shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltzmatch.data import write_structures
from boltzmatch.data.packed import PackedStructures
from boltzmatch.models.base import energy_and_forces
from boltzmatch.models.neighbors import complete_pairs
from boltzmatch.models.packed_pairs import PackedPairs
from boltzmatch.models.registry import build_model, validate_config
from boltzmatch.training.graphed_step import shape_key
from boltzmatch.training.prepare import prepare
from boltzmatch.training.settings import TrainSettings
from boltzmatch.training.trainer import EnergyStep
from helpers import labelled_molecules, record_kernels

CUTOFF = 2.5  # Å: ethanol's pairs within it number 38 to 54 of its 72 in these frames (9 counts in 44)
SMALL = {"schnet": {"n_interactions": 2, "n_features": 16, "n_rbf": 8},
         "painn": {"n_interactions": 2, "n_features": 16, "n_rbf": 8},
         "mace": {"hidden_irreps": "8x0e + 8x1o", "max_ell": 1, "correlation": 2, "num_interactions": 1,
                  "radial_mlp": [16]}}
CUTOFF_KEY = {"schnet": "cutoff", "painn": "cutoff", "mace": "r_max"}


def _frames(n: int = 40):
    """Ethanol frames jittered by 0.15 Å, so that pairs cross the 2.5 Å cutoff."""
    frames = labelled_molecules(n, seed=1)
    rng = np.random.default_rng(2)
    for atoms in frames:
        atoms.positions += 0.15 * rng.standard_normal(atoms.positions.shape)
    return frames


def _step(tmp_path, model: str, frames: int = 40, dtype: str = "float32") -> EnergyStep:
    write_structures(tmp_path / "data.xyz", _frames(frames))
    settings = TrainSettings(data=str(tmp_path / "data.xyz"), batch_size=8, clip=10.0, device="cpu", seed=3).check()
    config = validate_config({"name": model, CUTOFF_KEY[model]: CUTOFF, "elements": [1, 6, 8], "dtype": dtype,
                              **SMALL[model]})
    torch.manual_seed(0)
    return EnergyStep(prepare(settings, config, tmp_path / "run", False, None))


def test_the_data_sets_complete_pairs_are_those_of_a_fresh_batch_in_its_order():
    structures = labelled_molecules(3) + labelled_molecules(2, name="CH4") + labelled_molecules(2, name="H2O")
    packed = PackedStructures(structures)
    pairs = PackedPairs.complete_pairs(packed)
    for order in ([0, 1, 2, 3, 4, 5, 6], [6, 3, 0, 5, 1]):
        batch = packed.batch(np.array(order))
        fresh = complete_pairs(batch)
        brought = pairs(np.array(order), batch)
        assert brought.complete and not brought.exact
        assert torch.equal(brought.i, fresh.i) and torch.equal(brought.j, fresh.j)
        assert torch.equal(brought.half_index, fresh.half_index)
    assert pairs.n_pairs == 3 * 72 + 2 * 20 + 2 * 6


@pytest.mark.parametrize("model", ["schnet", "painn", "mace"])
def test_complete_pairs_give_the_energies_forces_and_gradients_of_the_pairs_within_the_cutoff(model):
    net = build_model(validate_config({"name": model, CUTOFF_KEY[model]: CUTOFF, "elements": [1, 6, 8],
                                       "dtype": "float64", **SMALL[model]}))
    packed = PackedStructures(_frames(12), dtype=torch.float64)
    within, every = PackedPairs.for_model(packed, net), PackedPairs.for_model(packed, net, complete=True)
    assert not within.complete and every.complete
    assert within.n_pairs < every.n_pairs == 12 * 72  # the molecule is larger than the cutoff
    host = np.arange(12)
    results = []
    for pairs in (within, every):
        batch = packed.batch(host, with_pairs=False)
        batch.pairs = pairs(host, batch)
        net.zero_grad()
        energy, forces = energy_and_forces(net, batch, create_graph=True)
        (energy.square().sum() + forces.square().sum()).backward()
        results.append((energy.detach(), forces.detach(), [p.grad.clone() for p in net.parameters()
                                                             if p.grad is not None]))
    (e1, f1, g1), (e2, f2, g2) = results
    torch.testing.assert_close(e1, e2, rtol=0, atol=1e-10)
    torch.testing.assert_close(f1, f2, rtol=0, atol=1e-10)
    assert len(g1) == len(g2) > 0
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_batches_of_one_molecule_keep_one_shape_with_complete_pairs_and_train_as_before(tmp_path):
    """With the pairs within the cutoff, batches of eight frames had shapes of their own (here 11 keys for 20
    batches), so a graph would rarely replay; with complete pairs there is one, every step after the warm-up runs
    on the static copies, and the losses are those of the pairs within the cutoff."""
    eager = _step(tmp_path / "eager", "schnet", frames=44, dtype="float64")
    packed, train = eager.run_.packed, eager.run_.split.train
    within_keys = {shape_key(packed.batch(train[k:k + 8])) for k in range(0, 32, 8)} | {
        shape_key(packed.batch(np.random.default_rng(s).permutation(train)[:8])) for s in range(16)}
    assert len(within_keys) > 3
    static = _step(tmp_path / "static", "schnet", frames=44, dtype="float64")
    static.run_.packed.pairs = PackedPairs.for_model(static.run_.packed, static.run_.net, complete=True)
    assert static.run_.packed.pairs.complete
    assert len({shape_key(static.run_.packed.batch(np.random.default_rng(s).permutation(train)[:8]))
                for s in range(16)}) == 1
    for calls in (static.gradients, static.predictions):
        calls.graphs, calls.capture, calls.warmup = True, False, 1
    for epoch in range(3):
        a, b = eager.run(epoch, {"epoch": epoch}), static.run(epoch, {"epoch": epoch})
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    assert len(static.gradients.captured) == 2  # batches of 8 and the epoch's last batch of 3
    assert static.gradients.static_steps == 3 * 5 - 2


@pytest.mark.parametrize("model", ["schnet", "painn", "mace"])
def test_a_step_on_complete_pairs_reads_nothing_back_and_repeats_its_operators(tmp_path, model):
    """Two batches whose frames have different pair counts within the cutoff: on the static copies of one shape
    they run the same operators with nothing read back, so one graph replays both."""
    step = _step(tmp_path, model)
    packed, train = step.run_.packed, step.run_.split.train
    packed.pairs = PackedPairs.for_model(packed, step.run_.net, complete=True)
    within = PackedPairs.search(packed, CUTOFF)
    first, second = train[24:32], train[:8]
    assert within.host_counts[first].sum() != within.host_counts[second].sum()
    gradients = step.gradients
    gradients.graphs, gradients.capture, gradients.warmup = True, False, 0
    for start in (0, 8, 16):  # the warm-up calls before a capture (lazy set-ups, TorchScript's profiling runs)
        gradients(packed.batch(train[start:start + 8]))
    recorded = record_kernels(gradients, "_run")
    for frames in (first, second):
        gradients(packed.batch(frames))
    a, b = recorded
    assert a.calls == b.calls and a.external == b.external
    names = [name for name, _ in a.calls]
    allowed = 2 if model == "mace" else 0  # MACE's one_hot checks its classes on the CPU (see test_graphed_step)
    assert sum(n.startswith("aten._local_scalar_dense") for n in names) == allowed
    assert not [n for n in names if n.startswith(("aten.lift_fresh", "aten.nonzero.", "aten.item"))]


def test_complete_pairs_only_for_models_that_mask_and_molecules_not_too_large():
    packed = PackedStructures(_frames(6), dtype=torch.float64)
    schnet = build_model(validate_config({"name": "schnet", "cutoff": CUTOFF, "elements": [1, 6, 8]}))
    linear = build_model(validate_config({"name": "linear", "cutoff": CUTOFF, "elements": [1, 6, 8]}))
    assert PackedPairs.for_model(packed, schnet, complete=True).complete
    assert not PackedPairs.for_model(packed, schnet).complete
    # the linear potential sums every pair it is given: it keeps the pairs within its cutoff
    assert not PackedPairs.for_model(packed, linear, complete=True).complete
    tight = build_model(validate_config({"name": "schnet", "cutoff": 1.2, "elements": [1, 6, 8]}))
    assert not PackedPairs.for_model(packed, tight, complete=True).complete  # 72 pairs where ~16 are bonds
    cell = labelled_molecules(1)[0]
    cell.cell, cell.pbc = np.eye(3) * 8.0, True
    assert PackedPairs.complete_pairs(PackedStructures([cell])) is None


def test_a_run_takes_complete_pairs_exactly_when_its_steps_replay_graphs(tmp_path, monkeypatch):
    """prepare() asks for complete pairs where graphs_refused() finds nothing against graphs (a CUDA device, a
    predictive objective, no autocast, no DDP); on the CPU it finds the device, so here it is told otherwise."""
    import boltzmatch.training.prepare as preparing

    write_structures(tmp_path / "data.xyz", _frames(12))
    config = {"name": "schnet", "cutoff": CUTOFF, **SMALL["schnet"]}

    def pairs(cuda_graphs: bool):
        settings = TrainSettings(data=str(tmp_path / "data.xyz"), device="cpu", cuda_graphs=cuda_graphs).check()
        return prepare(settings, validate_config(dict(config)), tmp_path / "run", False, None).packed.pairs

    assert not pairs(cuda_graphs=True).complete  # the CPU: nothing replays
    seen = []
    monkeypatch.setattr(preparing, "graphs_refused", lambda settings, *rest: seen.append(settings.objective))
    assert pairs(cuda_graphs=True).complete and not pairs(cuda_graphs=False).complete
    assert seen == ["energy-forces"]  # asked only where graphs were asked for
