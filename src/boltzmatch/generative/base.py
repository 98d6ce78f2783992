"""What every generative family provides, and the small pieces they share.

A family (``ebm``, ``jem``, ``classifier``, ``diffusion``, ``gan``, ``vae``) owns its networks
(``nets``, an ``nn.ModuleDict``) and optimisers, and works in a normalised space: data x map to
z = (x − shift) / scale with one scalar ``scale`` (so a density changes by d·log scale). The one
loop in :mod:`.train` feeds it batches; :mod:`.compare` judges what it samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import BoltzmatchError


def mlp(sizes: list[int], activation: type[nn.Module] = nn.SiLU, dropout: float = 0.0,
        final: nn.Module | None = None) -> nn.Sequential:
    """Fully connected layers ``sizes[0] → … → sizes[-1]`` with ``activation`` (and dropout) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


class LeakyReLU(nn.LeakyReLU):
    """LeakyReLU with slope 0.2, as in the GAN/VAE baselines (Raschka et al. ch. 17)."""

    def __init__(self):
        super().__init__(0.2)


class Family:
    """Base class. Subclasses set ``name``, ``scaling`` ('range': data to [−1, 1]; 'standard': unit
    variance), ``defaults`` (every option and its default: the options a user may set) and
    ``training`` (default optimiser steps, batch size, learning rate)."""

    name = "base"
    scaling = "standard"
    needs_labels = False
    can_sample = True
    defaults: dict = {}
    training: dict = {"steps": 10000, "batch_size": 128, "lr": 1e-3}

    @classmethod
    def defaults_for(cls, dim: int) -> dict:
        """The options' defaults for data of dimension ``dim`` (the same keys as ``defaults``)."""
        return cls.defaults

    @classmethod
    def training_for(cls, dim: int) -> dict:
        """The default optimiser steps, batch size and lr for data of dimension ``dim``."""
        return cls.training

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise BoltzmatchError(f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                                  f"allowed: {', '.join(sorted(self.defaults))}")
        self.options = {**self.defaults_for(int(dim)), **options}
        self.dim, self.n_classes = int(dim), int(n_classes)
        if self.needs_labels and self.n_classes < 2:
            raise BoltzmatchError(f"{self.name} needs labelled data (digits)")
        self.nets = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # --- set-up -------------------------------------------------------------------------------------
    def build_optimizers(self, lr: float) -> None:
        """One Adam over all networks (families with adversaries override)."""
        self.optimizers = {"adam": torch.optim.Adam(self.nets.parameters(), lr=lr)}

    def plan(self, total_updates: int) -> None:
        """The number of optimiser updates the run will make (for schedules), set before training."""

    def fit_data(self, x: torch.Tensor) -> None:
        """Data-dependent options, set once before training (normalised training data ``x``)."""

    # --- training and use ---------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None,
               **options) -> torch.Tensor:
        """``n`` samples in the normalised space."""
        raise BoltzmatchError(f"{self.name} does not generate samples")

    def log_likelihood(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """log p(x) in nats per point (normalised space), or None when the model has no tractable one."""
        return None

    def logits(self, x: torch.Tensor) -> torch.Tensor | None:
        """Class logits for classifiers (JEM), else None."""
        return None

    # --- state ----------------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def train_mode(self, on: bool) -> None:
        self.nets.train(on)


def uniform(n: int, dim: int, generator: torch.Generator, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """n points uniform in [low, high]^dim (fresh starts of the EBM replay buffer)."""
    return low + (high - low) * torch.rand(n, dim, generator=generator)


def logmeanexp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(values, dim) - math.log(values.shape[dim])
