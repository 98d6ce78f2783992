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

:func:`mala_sample` adds a Metropolis–Hastings test to each step (MALA): the chain then samples
exp(−E) exactly whatever ε, and an adaptive ε (:func:`adapt_step`, aiming at 57 % acceptance) replaces
a hand-tuned one. Unadjusted steps diverge where E is steep (ε > 2/curvature, e.g. the thin moons).
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


def energy_and_gradient(energy_fn: EnergyFn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E(x) (n,), ∇_x E(x)) for a batch ``x`` (n, ...), without touching parameter gradients."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        energy = energy_fn(x)
        (grad,) = torch.autograd.grad(energy.sum(), x)
    return energy.detach(), grad


def mala_sample(energy_fn: EnergyFn, x: torch.Tensor, *, steps: int, step_size: float,
                bounds: tuple[float, float] | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """``steps`` Metropolis-adjusted Langevin steps from ``x`` (n, ...) targeting exp(−E) (restricted to
    the box ``bounds``: proposals outside it are rejected). Proposal x' = x − ε∇E(x) + √(2ε)ξ, accepted
    with probability ``min(1, exp(E(x) − E(x') + log q(x|x') − log q(x'|x)))``. One energy and gradient
    evaluation per step, as for the unadjusted sampler. Returns (samples, mean acceptance rate)."""
    x = x.detach().clone()
    if steps < 1:
        return x, 1.0
    scale = math.sqrt(2.0 * step_size)
    dims = tuple(range(1, x.dim()))
    energy, grad = energy_and_gradient(energy_fn, x)
    accepted = 0.0
    for _ in range(steps):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        proposal = x - step_size * grad + scale * noise
        energy_new, grad_new = energy_and_gradient(energy_fn, proposal)
        forward = (noise**2).sum(dims) / 2  # −log q(x'|x) up to a constant
        backward = ((x - proposal + step_size * grad_new) ** 2).sum(dims) / (4 * step_size)
        log_ratio = energy - energy_new + forward - backward
        accept = torch.log(torch.rand(len(x), generator=generator, dtype=x.dtype, device=x.device)) < log_ratio
        accept &= torch.isfinite(energy_new)
        if bounds is not None:
            accept &= ((proposal >= bounds[0]) & (proposal <= bounds[1])).flatten(1).all(1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        x = torch.where(accept.view(shape), proposal, x)
        grad = torch.where(accept.view(shape), grad_new, grad)
        energy = torch.where(accept, energy_new, energy)
        accepted += float(accept.float().mean())
    return x.detach(), accepted / steps


def adapt_step(step_size: float, acceptance: float, target: float = 0.57, rate: float = 0.5,
               limits: tuple[float, float] = (1e-7, 1.0)) -> float:
    """The next MALA step: ε·exp(rate·(acceptance − target)), kept within ``limits`` (57 %: the
    optimal acceptance of MALA in high dimension, Roberts and Rosenthal 1998)."""
    return float(min(max(step_size * math.exp(rate * (acceptance - target)), limits[0]), limits[1]))


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
