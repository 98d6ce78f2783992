"""Overdamped Langevin / SGLD for densities p ∝ exp(−E(x)) over vectors, annealed Langevin down a
ladder of noise levels (diffusion models of vectors and of molecules), and a replay buffer.

The molecular sampler is the inertial (BAOAB) Langevin of :mod:`.integrators`; vectors (2-D toys,
images) without masses use the overdamped form

    x ← x − ε ∇E(x) + s ξ,    ξ ~ N(0, I),

which samples exp(−E) for small ε when s = √(2ε) (the unadjusted Langevin algorithm, the default).
Energy-based-model training (Du and Mordatch 2019; Grathwohl et al. 2020, JEM) sets the step ε and
the noise s separately and clamps the input gradient and the samples; both are options here.
:class:`ReplayBuffer` keeps persistent chains with a fraction of fresh restarts, for vectors and,
through the CD objective, for molecular configurations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def energy_gradient(energy_fn: EnergyFn, x: torch.Tensor) -> torch.Tensor:
    """∇_x Σ E(x) for a batch ``x`` (n, ...), without touching parameter gradients."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy_fn(x).sum(), x)
    return grad


def langevin_sample(energy_fn: EnergyFn, x: torch.Tensor, *, steps: int, step_size: float,
                    noise: float | None = None, grad_clip: float | None = None,
                    bounds: tuple[float, float] | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Run ``steps`` Langevin updates from ``x`` (n, ...) and return the final samples (detached).

    ``noise`` defaults to √(2·step_size) (then the chain targets exp(−E)); ``grad_clip`` clamps each
    gradient component to ±grad_clip; ``bounds`` clamps the samples after every step.
    """
    scale = math.sqrt(2.0 * step_size) if noise is None else float(noise)
    x = x.detach().clone()
    for _ in range(steps):
        grad = energy_gradient(energy_fn, x)
        if grad_clip is not None:
            grad = grad.clamp(-grad_clip, grad_clip)
        x = x - step_size * grad
        if scale > 0:
            x = x + scale * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if bounds is not None:
            x = x.clamp(*bounds)
    return x.detach()


def annealed_langevin(score_fn: Callable[[torch.Tensor, object], torch.Tensor], x: torch.Tensor,
                      levels: Iterable, *, steps_per_level: int,
                      step_size: Callable[[object, torch.Tensor, torch.Tensor], float | torch.Tensor],
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Annealed Langevin dynamics (Song and Ermon 2019): at each noise level in turn, ``steps_per_level``
    unadjusted Langevin steps x ← x + ε s(x; level) + √(2ε) ξ, ξ ~ N(0, I), along the score
    ``score_fn(x, level)`` = ∇ log p_level(x). ``step_size(level, score, ξ)`` gives ε (a float, or a
    tensor that broadcasts against x): a fixed fraction of the level's variance, or a signal-to-noise rule.
    Returns the final samples (detached)."""
    x = x.detach()
    for level in levels:
        for _ in range(steps_per_level):
            score = score_fn(x, level)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            epsilon = step_size(level, score, noise)
            scale = torch.sqrt(2 * epsilon) if torch.is_tensor(epsilon) else math.sqrt(2 * epsilon)
            x = (x + epsilon * score + scale * noise).detach()
    return x


class ReplayBuffer:
    """Persistent sampler chains (PCD): a fixed-size store of samples, drawn from with a fraction
    ``reinit`` replaced by fresh starts, written back after the sampler has moved them.

    ``fresh(n)`` returns n new starting points (uniform noise for images, data frames for molecules).
    """

    def __init__(self, size: int, fresh: Callable[[int], torch.Tensor], reinit: float = 0.05,
                 generator: torch.Generator | None = None):
        if size < 1:
            raise ValueError(f"buffer size must be positive, got {size}")
        if not 0.0 <= reinit <= 1.0:
            raise ValueError(f"reinit must lie in [0, 1], got {reinit}")
        self.size, self.fresh, self.reinit = int(size), fresh, float(reinit)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.samples = fresh(self.size)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices, starting points) for ``n`` chains; about ``reinit``·n of them restart fresh."""
        index = torch.randint(self.size, (n,), generator=self.generator)
        start = self.samples[index].clone()
        restart = torch.rand(n, generator=self.generator) < self.reinit
        if restart.any():
            start[restart] = self.fresh(int(restart.sum())).to(start.dtype)
        return index, start

    def push(self, index: torch.Tensor, samples: torch.Tensor) -> None:
        self.samples[index] = samples.detach().to(self.samples.dtype)

    def state_dict(self) -> dict:
        return {"samples": self.samples.clone(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.samples = state["samples"].clone()
        self.generator.set_state(state["generator"])
