"""CUDA-graph training steps and validation (training/graphed_step.py). The CPU runs everything but the capture:
batches copied into static tensors, keyed by shape, computed there; the numbers must be the eager ones to the last
bit. The capture and replay are checked on CUDA (gpu marker)."""

from __future__ import annotations

import types
import warnings

import pytest
import torch

from boltzmatch.cli.main import main
from boltzmatch.data import write_structures
from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.runs import run_dir as rd
from boltzmatch.training.graphed_step import cuda_graphs_apply, shape_key
from boltzmatch.training.prepare import prepare
from boltzmatch.training.settings import TrainSettings
from boltzmatch.training.trainer import EnergyStep
from helpers import cuda_synchronisations, labelled_molecules, record_kernels


def _step(tmp_path, model: str, frames: int = 40, **settings) -> EnergyStep:
    write_structures(tmp_path / "data.xyz", labelled_molecules(frames))
    options = dict(data=str(tmp_path / "data.xyz"), batch_size=8, clip=10.0, device="cpu", seed=3) | settings
    torch.manual_seed(0)
    run = prepare(TrainSettings(**options).check(), None, tmp_path / "run", False, model)
    return EnergyStep(run)


@pytest.mark.parametrize("model", ["schnet", "painn", "mace"])
def test_steps_on_static_copies_train_exactly_as_eager_steps(tmp_path, model):
    eager = _step(tmp_path / "eager", model, frames=44)  # 35 training frames: four batches of 8 and one of 3
    static = _step(tmp_path / "static", model, frames=44)
    for calls in (static.gradients, static.predictions):  # the training steps and the validation's evaluations
        calls.graphs, calls.capture, calls.warmup = True, False, 1
    for a, b in zip(eager.run_.net.state_dict().values(), static.run_.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for epoch in range(3):
        a, b = eager.run(epoch, {"epoch": epoch}), static.run(epoch, {"epoch": epoch})
        assert a == b if model != "mace" else a == pytest.approx(b, rel=1e-5)
    if model != "mace":  # two eager MACE runs differ from each other in float32's last bits (e3nn's kernels)
        for a, b in zip(eager.run_.net.state_dict().values(), static.run_.net.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    # every batch after a shape's first sighting ran on the static copies: two shapes (8 and 3 structures)
    assert len(static.gradients.captured) == 2
    assert static.gradients.static_steps == 3 * 5 - 2
    assert static.predictions.static_steps == 3 - 1  # one validation batch (4 frames) an epoch


@pytest.mark.parametrize(("model", "calls"), [("schnet", "gradients"), ("painn", "gradients"), ("mace", "gradients"),
                                              ("schnet", "predictions"), ("mace", "predictions")])
def test_a_captured_step_would_replay_what_an_eager_step_runs(tmp_path, model, calls):
    """Two batches of one shape, different frames, on the static copies: the same operators with the same host
    arguments, reading the same outside memory, and nothing read back or copied in from the host. That is what
    makes a replay of the first step's graph compute the second step (the CPU cannot capture, but it can check).
    For training steps and for validation's evaluations."""
    step = _step(tmp_path, model)
    gradients = getattr(step, calls)
    gradients.graphs, gradients.capture, gradients.warmup = True, False, 0
    packed, train = step.run_.packed, step.run_.split.train
    for start in (0, 8, 16):  # as many calls as precede a capture (two steps, the warm-up): lazy set-ups, MACE's
        gradients(packed.batch(train[start:start + 8]))  # tables and TorchScript's profiling runs (e3nn), are done
    recorded = record_kernels(gradients, "_run")  # what a graph would hold: the step on the static copies
    for frames in (train[24:32], train[:8]):
        gradients(packed.batch(frames))
    assert gradients.static_steps == 5
    first, second = recorded
    assert first.calls == second.calls
    assert first.external == second.external
    names = [name for name, _ in first.calls]
    # MACE's one_hot checks its classes on the CPU (item); on CUDA it leaves that to the scatter's device assert
    allowed = 2 if model == "mace" else 0
    assert sum(n.startswith("aten._local_scalar_dense") for n in names) == allowed
    assert not [n for n in names if n.startswith(("aten.lift_fresh", "aten.nonzero.", "aten.item"))]


def test_graphs_go_off_with_a_warning_where_no_batch_shape_repeats(tmp_path):
    """Batches that never repeat a shape (molecules of different sizes; here batches of 1, 2, 3... frames): counting
    their shapes would only grow."""
    step = _step(tmp_path, "schnet")
    gradients = step.gradients
    gradients.graphs, gradients.capture, gradients.max_shapes = True, False, 3
    train = step.run_.split.train
    with pytest.warns(UserWarning, match="CUDA graphs off for this run: 3 batch shapes and none came 3 times"):
        for size in range(1, 6):
            gradients(step.run_.packed.batch(train[:size]))
    assert not gradients.graphs and not gradients.seen and gradients.static_steps == 0


def test_a_shape_is_what_a_captured_step_depends_on(tmp_path):
    step = _step(tmp_path, "schnet")
    packed, train = step.run_.packed, step.run_.split.train
    first, second = packed.batch(train[:8]), packed.batch(train[8:16])
    assert shape_key(first) is not None and shape_key(first) == shape_key(second)
    assert shape_key(packed.batch(train[:4])) != shape_key(first)
    # no data-set pairs (the model would search them, which reads back) or pairs that are not exact: not captured
    assert shape_key(AtomsBatch.from_atoms(labelled_molecules(2))) is None
    moved = first.with_positions(first.positions + 0.01)
    moved.pairs = None
    assert shape_key(moved) is None


def _run(**changes) -> types.SimpleNamespace:
    settings = dict(cuda_graphs=True, precision="float32", objective="energy-forces") | changes.pop("settings", {})
    return types.SimpleNamespace(settings=types.SimpleNamespace(**settings),
                                 dist=types.SimpleNamespace(active=changes.get("dist", False)),
                                 objective=types.SimpleNamespace(predictive=changes.get("predictive", True)),
                                 packed=types.SimpleNamespace(pairs=changes.get("pairs", object())))


@pytest.mark.parametrize(("run", "device", "reason"), [
    (_run(), "cpu", "the run's device is cpu"),
    (_run(settings={"precision": "fp16"}), "cuda", "--precision fp16"),
    (_run(dist=True), "cuda", "DistributedDataParallel"),
    (_run(predictive=False, settings={"objective": "dsm"}), "cuda", "the objective dsm moves the positions"),
    (_run(pairs=None), "cuda", "the data set has more pairs than are kept"),
])
def test_graphs_are_off_with_a_warning_saying_why(run, device, reason):
    with pytest.warns(UserWarning, match=f"--cuda-graphs ignored: {reason}"):
        assert not cuda_graphs_apply(run, torch.device(device))
    assert cuda_graphs_apply(_run(), torch.device("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cuda_graphs_apply(_run(settings={"cuda_graphs": False}), torch.device("cuda"))


def test_the_train_command_takes_cuda_graphs_into_the_run_config(tmp_path):
    write_structures(tmp_path / "data.xyz", labelled_molecules(20))
    with pytest.warns(UserWarning, match="--cuda-graphs ignored: the run's device is cpu"):
        main(["train", str(tmp_path / "data.xyz"), "--out", str(tmp_path / "run"), "--model", "schnet",
              "--epochs", "1", "--device", "cpu", "--cuda-graphs", "--quiet"])
    assert rd.read_config(tmp_path / "run")["training"]["cuda_graphs"] is True


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["schnet", "mace"])
def test_on_a_gpu_replayed_graphs_train_as_the_eager_steps_without_synchronising(tmp_path, model):
    """Replays compute the eager kernels (index_add's atomics sum in any order: close, not equal); an epoch of
    replays synchronises no more than an eager one."""
    eager = _step(tmp_path / "eager", model, device="cuda")
    graphed = _step(tmp_path / "graphed", model, device="cuda", cuda_graphs=True)
    assert graphed.gradients.graphs
    rows = [(eager.run(e, {"epoch": e}), graphed.run(e, {"epoch": e})) for e in range(3)]
    assert graphed.gradients.static_steps > 0 and graphed.gradients.graphs
    assert graphed.predictions.static_steps > 0 and graphed.predictions.graphs
    for a, b in rows:
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-6), key
    syncs = [cuda_synchronisations(lambda s=step: s.run(3, {"epoch": 3})) for step in (eager, graphed)]
    assert syncs[1] <= syncs[0], syncs
