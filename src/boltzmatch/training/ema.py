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
        self.updates = 0  # on the host: AveragedModel's own count is a tensor

    @property
    def module(self) -> nn.Module:
        """The averaged model."""
        return self.averaged.module

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Fold the weights of ``net`` (the model the optimizer steps) into the average."""
        averaged = list(self.averaged.module.parameters())
        current = [p.detach() for p in net.parameters()]
        if self.updates == 0:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
        else:
            floating = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
            if floating:
                torch._foreach_lerp_([a for a, _ in floating], [c for _, c in floating], 1.0 - self.decay)
            for a, c in zip(averaged, current, strict=True):
                if not a.is_floating_point():
                    a.copy_(a * self.decay + c * (1.0 - self.decay))
        for mine, theirs in zip(self.averaged.module.buffers(), net.buffers(), strict=True):
            mine.copy_(theirs)
        self.averaged.n_averaged += 1
        self.updates += 1

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
        self.updates = int(self.averaged.n_averaged)
