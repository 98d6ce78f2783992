"""Padded training batches (training/padding.py): molecules of different sizes in batches of one shape, with the loss
and gradients of the unpadded batch, so that a CUDA graph of the training step replays for them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltzmatch.data import write_structures
from boltzmatch.data.packed import PackedStructures
from boltzmatch.models.packed_pairs import PackedPairs
from boltzmatch.models.registry import build_model, validate_config
from boltzmatch.objectives.registry import make_objective
from boltzmatch.training.graphed_step import shape_key
from boltzmatch.training.padding import PaddedShape, fit_padding, pad_batch
from boltzmatch.training.prepare import prepare
from boltzmatch.training.settings import TrainSettings
from boltzmatch.training.summary import format_train_summary
from boltzmatch.training.trainer import EnergyStep
from helpers import labelled_molecules, record_kernels

NAMES = ("CH3CH2OH", "CH4", "H2O", "C6H6", "CH3OH", "H2CO", "CH3CHO")
SMALL = {"schnet": {"n_interactions": 2, "n_features": 16, "n_rbf": 8, "cutoff": 4.0},
         "painn": {"n_interactions": 2, "n_features": 16, "n_rbf": 8, "cutoff": 4.0},
         "mace": {"hidden_irreps": "8x0e + 8x1o", "max_ell": 1, "correlation": 2, "num_interactions": 1,
                  "radial_mlp": [16], "r_max": 4.0}}


def _molecules(per_name: int = 8) -> list:
    frames = [atoms for k, name in enumerate(NAMES) for atoms in labelled_molecules(per_name, seed=k, name=name)]
    for atoms in frames:
        atoms.info["temperature"] = 500.0
    return [frames[k] for k in np.random.default_rng(0).permutation(len(frames))]


def _packed(model, dtype=torch.float64) -> PackedStructures:
    packed = PackedStructures(_molecules(), dtype=dtype)
    packed.pairs = PackedPairs.for_model(packed, model, complete=True)
    assert packed.pairs.complete
    return packed


def _model(name: str, dtype: str = "float64"):
    torch.manual_seed(0)
    return build_model(validate_config({"name": name, "elements": [1, 6, 8], "dtype": dtype, **SMALL[name]}))


@pytest.mark.parametrize("objective", ["energy-forces", "fisher"])
@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_a_padded_batch_has_the_loss_metrics_and_gradients_of_the_batch_itself(name, objective):
    model = _model(name)
    packed = _packed(model)
    shape = fit_padding(packed, np.arange(len(packed)), 8, cutoff=4.0)
    loss_of = make_objective(objective, temperature=500.0)
    results = []
    for pad in (False, True):
        batch = packed.batch(np.arange(8))
        if pad:
            batch = pad_batch(batch, shape)
            assert batch.n_structures == 9 and batch.n_atoms == shape.n_atoms and len(batch.pairs.i) == shape.pairs
        model.zero_grad()
        loss, metrics = loss_of(model, batch)
        loss.backward()
        results.append((loss.detach(), metrics, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (l1, m1, g1), (l2, m2, g2) = results
    torch.testing.assert_close(l1, l2, rtol=1e-10, atol=0)
    assert m1.keys() == m2.keys()
    for key in m1:
        torch.testing.assert_close(m1[key], m2[key], rtol=1e-10, atol=0)
    assert len(g1) == len(g2) > 0
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_the_padded_shape_holds_most_random_batches_and_refuses_the_rest():
    model = _model("schnet")
    packed = _packed(model)
    everything = np.arange(len(packed))
    shape = fit_padding(packed, everything, 8, cutoff=4.0, quantile=0.95)
    assert shape.spacing == 8.0 and dict(shape.atoms).keys() == {1, 6, 8}
    rng = np.random.default_rng(7)
    batches = [packed.batch(rng.choice(everything, 8, replace=False)) for _ in range(200)]
    padded = [pad_batch(b, shape) for b in batches]
    fitted = [p for p in padded if p is not None]
    assert 0.85 * len(batches) <= len(fitted) < len(batches)  # ~95 % by construction; some do not fit
    assert len({shape_key(p) for p in fitted}) == 1 and len({shape_key(b) for b in batches}) > 50
    assert pad_batch(packed.batch(everything[:4]), shape) is None  # another structure count
    small = PaddedShape(structures=8, atoms=((1, 1), (6, 1), (8, 1)), pairs=2, spacing=8.0)
    assert pad_batch(batches[0], small) is None  # more atoms than it holds
    twice = fitted[0].tile(2)  # a per-structure value, repeated with the structures
    assert torch.equal(twice.weight, torch.cat([fitted[0].weight, fitted[0].weight]))
    ethanol = PackedStructures(labelled_molecules(20))
    assert fit_padding(ethanol, np.arange(20), 8, cutoff=4.0) is None  # one molecule: one shape already


def test_padded_training_replays_one_shape_and_trains_as_the_unpadded_steps(tmp_path):
    """An epoch of mixed molecules on the static copies, padded, against ordinary steps: the same losses, and all but
    the warm-up and the batches that do not fit run on one captured shape."""
    write_structures(tmp_path / "data.xyz", _molecules(10))
    config = {"name": "schnet", "elements": [1, 6, 8], "dtype": "float64", **SMALL["schnet"]}

    def step(folder: str) -> EnergyStep:
        settings = TrainSettings(data=str(tmp_path / "data.xyz"), batch_size=8, device="cpu", seed=3).check()
        torch.manual_seed(0)
        run = prepare(settings, validate_config(dict(config)), tmp_path / folder, False, None)
        run.packed.pairs = PackedPairs.for_model(run.packed, run.net, complete=True)
        return EnergyStep(run)

    eager, padded = step("eager"), step("padded")
    padded.padding = fit_padding(padded.run_.packed, padded.run_.split.train, 8, cutoff=4.0)
    padded.gradients.graphs, padded.gradients.capture = True, False
    for epoch in range(2):
        a, b = eager.run(epoch, {"epoch": epoch}), padded.run(epoch, {"epoch": epoch})
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    steps = 2 * int(np.ceil(len(padded.run_.split.train) / 8))
    assert padded.gradients.static_steps >= 0.6 * steps
    padded_keys = [k for k in padded.gradients.seen if ("weight", None) not in k]  # the padded batches' shapes
    assert len(padded_keys) == 1 and padded_keys[0] in padded.gradients.captured


@pytest.mark.parametrize("name", ["schnet", "mace"])
def test_padded_batches_of_different_molecules_run_the_same_operators_and_read_nothing_back(name):
    model = _model(name, "float32")
    packed = _packed(model, dtype=torch.float32)
    shape = fit_padding(packed, np.arange(len(packed)), 8, cutoff=4.0)
    loss_of = make_objective("energy-forces")
    rng = np.random.default_rng(3)
    batches = [b for b in (pad_batch(packed.batch(rng.choice(len(packed), 8, replace=False)), shape)
                           for _ in range(20)) if b is not None]
    first, second = batches[-2:]
    assert first.element_counts == second.element_counts and not torch.equal(first.numbers, second.numbers)

    class Call:
        def step(self, batch):
            model.zero_grad()
            loss, _ = loss_of(model, batch)
            loss.backward()

    call = Call()
    for batch in batches[:3]:  # lazy set-ups and TorchScript's profiling runs first
        call.step(batch)
    recorded = record_kernels(call, "step")
    call.step(first)
    call.step(second)
    a, b = recorded
    assert a.calls == b.calls
    names = [n for n, _ in a.calls]
    allowed = 2 if name == "mace" else 0  # MACE's one_hot checks its classes on the CPU (see test_graphed_step)
    assert sum(n.startswith("aten._local_scalar_dense") for n in names) == allowed
    assert not [n for n in names if n.startswith(("aten.lift_fresh", "aten.nonzero.", "aten.item"))]


@pytest.mark.parametrize(("objective", "options"), [("energy-forces", {}), ("energy", {}),
                                                  ("fisher", {"temperature": 500.0})])
def test_validation_on_padded_batches_gives_the_errors_and_loss_of_the_batches_themselves(objective, options):
    from boltzmatch.training.distributed import Distributed
    from boltzmatch.training.validation import validate

    model = _model("painn")
    packed = _packed(model)
    indices = np.arange(len(packed))
    shape = fit_padding(packed, indices, 8, cutoff=4.0)
    padded = []

    def pad(batch):
        out = pad_batch(batch, shape)
        padded.append(out is not None)
        return out

    loss_of = make_objective(objective, **options)
    plain = validate(loss_of, model, packed, indices, 8, seed=0, dist=Distributed())
    with_padding = validate(loss_of, model, packed, indices, 8, seed=0, dist=Distributed(), pad=pad)
    assert sum(padded) >= 4 and len(padded) == 7  # 56 structures in chunks of 8; most fit
    assert with_padding[0].keys() == plain[0].keys() and len(plain[0]) >= 4
    assert with_padding[0] == pytest.approx(plain[0], rel=1e-10)
    assert with_padding[1] == pytest.approx(plain[1], rel=1e-10)


def test_a_run_pads_its_batches_exactly_when_its_steps_replay_graphs(tmp_path, monkeypatch):
    """The wiring the GPU test below runs: a run whose steps replay graphs (here told so on the CPU) trains on complete
    pairs and pads its batches of mixed molecules; a run without graphs does neither."""
    import boltzmatch.training.prepare as preparing
    import boltzmatch.training.trainer as training

    write_structures(tmp_path / "data.xyz", _molecules(6))
    config = {"name": "schnet", "elements": [1, 6, 8], **SMALL["schnet"]}

    def step(graphs: bool) -> EnergyStep:
        settings = TrainSettings(data=str(tmp_path / "data.xyz"), batch_size=8, device="cpu", cuda_graphs=graphs,
                                 val_fraction=0.4, test_fraction=0.0).check()  # 17 validation structures
        return EnergyStep(prepare(settings, validate_config(dict(config)), tmp_path / "run", False, None))

    with pytest.warns(UserWarning, match="--cuda-graphs ignored: the run's device is cpu"):
        assert step(True).padding is None
    monkeypatch.setattr(preparing, "graphs_refused", lambda *args: None)
    monkeypatch.setattr(training, "cuda_graphs_apply", lambda run, device: run.settings.cuda_graphs)
    graphed, plain = step(True), step(False)
    assert graphed.run_.packed.pairs.complete and graphed.padding.structures == 8
    assert not plain.run_.packed.pairs.complete and plain.padding is None
    graphed.gradients.capture = graphed.predictions.capture = False  # the CPU cannot capture: the static copies
    assert graphed.validation_padding.structures == 16 and plain.validation_padding is None
    for epoch in range(3):
        graphed.run(epoch, {"epoch": epoch})
    assert graphed.gradients.static_steps > 0 and plain.graph_summary() == {}
    # 17 validation structures: a padded batch of 16 and one of 1 an epoch, each on its shape from the third epoch
    assert graphed.predictions.static_steps == 2
    assert [k for k in graphed.predictions.captured if ("weight", None) not in k]  # the padded one among them
    steps = 3 * int(np.ceil(len(graphed.run_.split.train) / 8))
    summary = graphed.graph_summary()
    assert summary == {"cuda_graph_steps": graphed.gradients.static_steps, "steps": steps,
                       "padded_atoms": graphed.padding.n_atoms}
    table = format_train_summary({"run_dir": "run", "epochs": 3, "best_epoch": 3, "n_train": 26, "n_val": 16,
                                  "n_test": 0, "wall_seconds": 1.0, **summary})
    assert (f"{summary['cuda_graph_steps']} of {steps} steps replayed, batches padded to "
            f"{graphed.padding.n_atoms} atoms") in table


@pytest.mark.gpu
def test_on_a_gpu_mixed_molecules_train_padded_on_one_replayed_graph(tmp_path):
    """`train --cuda-graphs` on molecules of different sizes: complete pairs, padded batches, one captured shape,
    and the losses of the eager steps (index_add's atomics sum in any order: close, not equal)."""
    write_structures(tmp_path / "data.xyz", _molecules(10))
    config = {"name": "schnet", "elements": [1, 6, 8], **SMALL["schnet"]}

    def step(folder: str, graphs: bool) -> EnergyStep:
        settings = TrainSettings(data=str(tmp_path / "data.xyz"), batch_size=8, device="cuda", seed=3,
                                 cuda_graphs=graphs).check()
        torch.manual_seed(0)
        return EnergyStep(prepare(settings, validate_config(dict(config)), tmp_path / folder, False, None))

    eager, graphed = step("eager", False), step("graphed", True)
    assert graphed.run_.packed.pairs.complete and graphed.padding is not None and eager.padding is None
    rows = [(eager.run(e, {"epoch": e}), graphed.run(e, {"epoch": e})) for e in range(3)]
    assert graphed.gradients.graphs and graphed.gradients.static_steps >= 0.6 * 3 * 7
    for a, b in rows:
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-6), key
