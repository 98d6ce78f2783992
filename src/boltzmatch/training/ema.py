"""The exponential moving average of a model's weights that validation, ``model.pt`` and early stopping use.

The numbers are those of torch's ``AveragedModel`` with ``get_ema_multi_avg_fn`` (which this keeps, so that
checkpoints hold its state dict), updated without its two reads of the update count per step: that count is
a tensor, and on a GPU each read waits for the queue of the step to drain.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage:
    """``W_ema ← decay · W_ema + (1 − decay) · W`` after every optimizer step (the first step copies ``W``);
    buffers (element energies in eV, the energy scale in eV) follow the model as they are."""

    def __init__(self, net: nn.Module, decay: float):
        self.averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = float(decay)
        self.updates = 0  # on the host: AveragedModel's own count is a tensor, set from this one when saved
        self._pairs: tuple | None = None  # (net, floating pairs, other pairs, buffer pairs): found once per net
        self._buffer_versions: list[int] = []

    @property
    def module(self) -> nn.Module:
        """The averaged model."""
        return self.averaged.module

    def _pairs_of(self, net: nn.Module) -> tuple:
        """The (average, model) tensor pairs: traversing the modules for them cost 0.8 ms a step (SchNet), as
        much as the rest of a small batch's optimizer step."""
        if self._pairs is None or self._pairs[0] is not net:
            params = list(zip(self.averaged.module.parameters(), [p.detach() for p in net.parameters()], strict=True))
            buffers = list(zip(self.averaged.module.buffers(), net.buffers(), strict=True))
            self._pairs = (net, [(a, c) for a, c in params if a.is_floating_point()],
                           [(a, c) for a, c in params if not a.is_floating_point()], buffers)
            self._buffer_versions = [-1] * len(buffers)
        return self._pairs

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Fold the weights of ``net`` (the model the optimizer steps) into the average."""
        _, floating, other, buffers = self._pairs_of(net)
        if self.updates == 0:
            for a, c in floating + other:
                a.copy_(c)
        else:
            if floating:
                torch._foreach_lerp_([a for a, _ in floating], [c for _, c in floating], 1.0 - self.decay)
            for a, c in other:
                a.copy_(a * self.decay + c * (1.0 - self.decay))
        for k, (mine, theirs) in enumerate(buffers):  # copied when they changed (in-place writes bump _version)
            if theirs._version != self._buffer_versions[k]:
                mine.copy_(theirs)
                self._buffer_versions[k] = theirs._version
        self.updates += 1

    def state_dict(self) -> dict:
        self.averaged.n_averaged.fill_(self.updates)
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
        self.updates = int(self.averaged.n_averaged)
        self._buffer_versions = [-1] * len(self._buffer_versions)
