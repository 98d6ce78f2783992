"""A training step's loss and gradients, and validation's energies and forces, captured once as a CUDA graph
and replayed for every batch of that shape.

At the small batches that reach a force error in the fewest seconds, a GPU step costs what the host takes to
launch its kernels, not what they compute: a SchNet step (the forward, the forces by autograd, the backward
through both) dispatches ~840 operators, 4.9 ms of host work on the project's 2-core CPU at batch 1, where the
training goal leaves ~1.2 ms a step (docs/gpu.md). A CUDA graph launches them all with one call. This is
PyTorch's partial-network capture: the batch is copied into static tensors, the graph replays the objective
and its backward on them, and the parameters' ``.grad`` are the graph's own tensors; clipping, the fused Adam
step and the weight average run as before, outside the graph (a handful of launches). Validation's evaluations
(the energy and its forces, ~250 operators a batch, every epoch) are replayed the same way (:class:`Predictions`);
the errors are summed from the replay's outputs as before.

A graph replays fixed kernels on fixed memory, so it is kept per batch *shape*: every tensor's shape and dtype
and every host-side value of the batch (:func:`shape_key`), the pair count included. One molecule's frames, the
common case here, give one shape per batch size (and one for an epoch's last, shorter batch) where the pairs are
every pair of each molecule's atoms: with graphs on a GPU, models that mask pairs beyond their cutoff (SchNet,
PaiNN, MACE) train on those (:meth:`~boltzmatch.models.packed_pairs.PackedPairs.complete_pairs`), as MD does.
The pairs within the cutoff would change the shape whenever a frame's count changes, i.e. for any molecule
larger than the cutoff. A shape is captured after it has been
seen ``warmup`` times, at most ``max_graphs`` of them; other batches run as before. A batch is captured only
where its step reads nothing back from the GPU: its pairs are the data set's own (:mod:`~boltzmatch.models.
packed_pairs`) for molecules, and the objective is a function of the model at the data (``predictive``:
the supervised losses, fisher); a capture that fails all the same turns the graphs off for the run, with a
warning, and the step runs as before.

On the CPU there is nothing to capture: ``capture=False`` runs the same static copies and keys eagerly, which
is how the tests check everything but the capture itself.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import torch

from ..data.atoms_batch import AtomsBatch
from ..models.base import predict_labels
from ..models.neighbors import PairList
from ..utils.device import capture_cuda_graph, graph_failure

#: a batch's loss and detached metrics (tensors), computed with autograd so that ``loss.backward()`` works
Compute = Callable[[AtomsBatch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def shape_key(batch: AtomsBatch) -> tuple | None:
    """What a captured step depends on besides the values in the batch's tensors: each tensor field's shape, dtype
    and device and each host field's value; ``None`` for a batch whose step would read back from a GPU (pairs
    that are neither the exact pairs of molecules at the model's cutoff nor their complete pairs: the model
    searches, and a search reads)."""
    pairs = batch.pairs
    if not isinstance(pairs, PairList) or not (pairs.exact or pairs.complete) or pairs.unit_shifts is not None:
        return None
    key = []
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor):
            key.append((field.name, tuple(value.shape), value.dtype, value.device))
        elif field.name == "pairs":
            key.append((field.name, tuple(pairs.i.shape), pairs.i.dtype, pairs.cutoff, pairs.complete))
        else:
            key.append((field.name, value))
    return tuple(key)


class _StaticBatch:
    """A batch's tensors in memory that stays put, and pairs marked as found at those very tensors."""

    def __init__(self, batch: AtomsBatch):
        tensors = {f.name: getattr(batch, f.name).detach().clone() for f in dataclasses.fields(batch)
                   if isinstance(getattr(batch, f.name), torch.Tensor)}
        static = dataclasses.replace(batch, **tensors)
        pairs = batch.pairs
        static.pairs = PairList(i=pairs.i.clone(), j=pairs.j.clone(), unit_shifts=None, cutoff=pairs.cutoff,
                                positions=static.positions.detach(), cell=static.cell.detach(),
                                structure_index=static.structure_index)
        if pairs.complete:  # the data set's complete pairs (PackedPairs.complete_pairs) bring their half index
            static.pairs.mark_complete(pairs.half_index.clone())
        self.batch, self.names = static, tuple(tensors)

    @torch.no_grad()
    def load(self, batch: AtomsBatch) -> AtomsBatch:
        """Copy ``batch``'s values in (same :func:`shape_key`) and return the static batch."""
        for name in self.names:
            getattr(self.batch, name).copy_(getattr(batch, name))
        pairs = self.batch.pairs
        pairs.i.copy_(batch.pairs.i)
        pairs.j.copy_(batch.pairs.j)
        if pairs.complete:  # batches of one shape may order their molecules differently: i and j differ
            pairs.half_index.copy_(batch.pairs.half_index)
        pairs.found_for(self.batch, exact=not pairs.complete)  # at these very tensors: the model takes them whole
        return self.batch


@dataclasses.dataclass
class _Graph:
    static: _StaticBatch
    graph: object = None  # torch.cuda.CUDAGraph once captured
    outputs: tuple | None = None  # the graph's outputs, overwritten by every replay
    state: list | None = None  # what the capture left besides its outputs (the gradients, in the graph's memory)


class ShapeGraphs:
    """``outputs = calls(batch)``: :meth:`_run` on ``batch``, by replaying a CUDA graph of the batch's shape where
    ``capture`` and the batch allow it (see the module's notes). A replay's outputs are overwritten by the next
    one: use them before."""

    def __init__(self, *, graphs: bool, capture: bool = True, warmup: int = 2, max_graphs: int = 4,
                 max_shapes: int = 1024):
        self.graphs, self.capture = graphs, capture
        self.warmup, self.max_graphs, self.max_shapes = warmup, max_graphs, max_shapes
        self.seen: dict[tuple, int] = {}
        self.captured: dict[tuple, _Graph] = {}
        self.static_steps = 0  # batches computed on static copies (replayed, or eagerly where nothing is captured)

    def _run(self, batch: AtomsBatch) -> tuple:
        raise NotImplementedError

    def _state(self) -> list | None:
        """What a capture leaves besides its outputs, for :meth:`_replayed`."""
        return None

    def _replayed(self, state: list | None) -> None:
        """After a replay: point the host's references at the graph's memory again."""

    def __call__(self, batch: AtomsBatch) -> tuple:
        key = shape_key(batch) if self.graphs else None
        entry = None if key is None else self.captured.get(key)
        if entry is None and key is not None:
            if key not in self.seen and len(self.seen) >= self.max_shapes:
                return self._too_many_shapes(batch)
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] > self.warmup and len(self.captured) < self.max_graphs:
                entry = self.captured[key] = _Graph(_StaticBatch(batch))
        if entry is None:
            return self._run(batch)
        static = entry.static.load(batch)
        if not self.capture:
            self.static_steps += 1
            return self._run(static)
        if entry.graph is None and not self._captured(entry):
            return self._run(batch)
        entry.graph.replay()
        self._replayed(entry.state)
        self.static_steps += 1
        return entry.outputs

    def _too_many_shapes(self, batch: AtomsBatch) -> tuple:
        """``max_shapes`` shapes seen: stop counting new ones; with nothing captured, graphs off (a warning)."""
        if not self.captured:
            self.graphs = False
            self.seen.clear()
            warnings.warn(f"CUDA graphs off for this run: {self.max_shapes} batch shapes and none came "
                          f"{self.warmup + 1} times (molecules of different sizes give batches shapes of their own; "
                          "graphs pay off on the frames of one molecule)", stacklevel=3)
        return self._run(batch)

    def _captured(self, entry: _Graph) -> bool:
        """Capture ``entry``'s call (PyTorch's recipe: a warm-up on a side stream, then the capture); ``False``,
        graphs off, where it fails."""
        batch = entry.static.batch
        try:
            graph, outputs = capture_cuda_graph(lambda: self._run(batch), batch.positions.device)
        except RuntimeError as error:
            self.graphs = False
            self.captured.clear()
            warnings.warn(f"CUDA graphs off for this run: capturing a {type(self).__name__} call failed "
                          f"({graph_failure(error)})", stacklevel=3)
            return False
        entry.graph, entry.outputs, entry.state = graph, outputs, self._state()
        return True


class BatchGradients(ShapeGraphs):
    """``loss, metrics = gradients(batch)``: the objective on ``batch`` and its backward, the gradients left in
    ``parameters``' ``.grad`` (what ``zero_grad``, the objective and ``backward`` did). A graph's gradients are
    its own tensors (they are unset before each call, so the capture allocates them); the trainer stacks a
    replay's loss and metrics before the next."""

    def __init__(self, compute: Compute, backward: Callable[[torch.Tensor], None], parameters: list[torch.Tensor],
                 **options):
        super().__init__(**options)
        self.compute, self.backward, self.parameters = compute, backward, list(parameters)

    def _run(self, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        for parameter in self.parameters:
            parameter.grad = None
        loss, metrics = self.compute(batch)
        self.backward(loss)
        return loss.detach(), metrics

    def _state(self) -> list:
        return [parameter.grad for parameter in self.parameters]

    def _replayed(self, state: list) -> None:
        for parameter, grad in zip(self.parameters, state, strict=True):
            parameter.grad = grad  # a call of another shape in between set them to None


class Predictions(ShapeGraphs):
    """``energy, forces, stress = predictions(batch)``: a model's energy (n_structures,) eV, forces (n_atoms, 3) eV/Å
    (``None`` without ``forces``) and, with ``stress``, the stress of crystals (n_structures, 3, 3) eV/Å³ (else
    ``None``), detached: what validation compares with the labels. Crystals' batches are never captured (their
    pairs carry periodic shifts, :func:`shape_key`)."""

    def __init__(self, model: torch.nn.Module, *, forces: bool = True, stress: bool = False, **options):
        super().__init__(**options)
        self.model, self.forces, self.stress = model, forces, stress

    def _run(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        return predict_labels(self.model, batch, forces=self.forces, stress=self.stress)


def graphs_refused(settings, device: torch.device, distributed: bool, objective) -> str | None:
    """Why training steps with these ``settings`` (:class:`~.settings.TrainSettings`), on ``device``, cannot replay
    CUDA graphs; ``None`` where they can, as far as the data set's pairs allow (:func:`cuda_graphs_apply`)."""
    if device.type != "cuda":
        return f"the run's device is {device.type}"
    if settings.precision in ("bf16", "fp16"):
        return f"--precision {settings.precision} (autocast caches casts; fp16 scales its loss on the host)"
    if distributed:
        return "DistributedDataParallel reduces gradients in hooks a graph does not replay"
    if not getattr(objective, "predictive", False):
        return f"the objective {settings.objective} moves the positions or draws noise, and the model searches them"
    return None


def cuda_graphs_apply(run, device: torch.device) -> bool:
    """Whether the training steps of ``run`` (a :class:`~.prepare.PreparedRun`) replay CUDA graphs: its settings
    ask for them (``cuda_graphs``) and the run allows them; a warning says why not where they were asked for."""
    settings = run.settings
    if not settings.cuda_graphs:
        return False
    reason = graphs_refused(settings, device, run.dist.active, run.objective)
    if reason is None and run.packed.pairs is None:
        reason = "the data set has more pairs than are kept, and the model searches them per batch"
    if reason is not None:
        warnings.warn(f"--cuda-graphs ignored: {reason}", stacklevel=2)
        return False
    return True
