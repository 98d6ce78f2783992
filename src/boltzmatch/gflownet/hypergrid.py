"""The hypergrid (Bengio et al. 2021) with torchgfn's reward.

States are points x ∈ {0 … H−1}^D, starting at the origin; forward action i increments coordinate
i (while x_i < H − 1), the last action exits at any state; backward action i decrements x_i.
With ``a_i = |x_i/(H − 1) − 0.5|``: R(x) = R0 + R1·∏_i [0.25 < a_i] + R2·∏_i [0.3 < a_i < 0.4],
compared exactly (in integers), so the reward is symmetric under x_i → H − 1 − x_i as torchgfn's is.
"""

from __future__ import annotations

import math

import torch

from ..errors import BoltzmatchError
from .env import Environment


class Hypergrid(Environment):
    name = "hypergrid"
    enumerable = True

    def __init__(self, ndim: int = 2, height: int = 8, r0: float = 0.1, r1: float = 0.5, r2: float = 2.0):
        if ndim < 1 or height < 2:
            raise BoltzmatchError(f"hypergrid needs ndim ≥ 1 and height ≥ 2, got ndim {ndim}, height {height}")
        if height**ndim > 5_000_000:
            raise BoltzmatchError(f"hypergrid {height}^{ndim} has more than 5 million states")
        if r0 <= 0:
            raise BoltzmatchError(f"R0 must be positive (log rewards), got {r0}")
        if r1 < 0 or r2 < 0:
            raise BoltzmatchError(f"--r1 and --r2 must be ≥ 0 (a reward below R0 can be negative), got {r1}, {r2}")
        self.ndim, self.height, self.r0, self.r1, self.r2 = int(ndim), int(height), float(r0), float(r1), float(r2)
        self.n_actions = self.ndim + 1
        self.n_backward = self.ndim
        self.max_length = self.ndim * (self.height - 1)
        # per-coordinate indicators, exact in integers: a = d / (2(H − 1)) with d = |2x − (H − 1)|.
        # Floating point put x = 12 of a 16-grid (a = 0.30000000000000004) in the band but not its
        # mirror x = 3 (a = 0.3).
        d, span = (2 * torch.arange(self.height) - (self.height - 1)).abs(), self.height - 1
        self._outer = 4 * d > 2 * span
        self._band = (10 * d > 6 * span) & (10 * d < 8 * span)
        self._feature_offsets = self.height * torch.arange(self.ndim)

    def options(self) -> dict:
        return {"ndim": self.ndim, "height": self.height, "r0": self.r0, "r1": self.r1, "r2": self.r2}

    def initial(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.ndim, dtype=torch.long)

    def forward_mask(self, states):
        return torch.cat([states < self.height - 1, torch.ones(len(states), 1, dtype=torch.bool)], dim=1)

    def backward_mask(self, states):
        return states > 0

    def step(self, states, actions):
        return states.scatter_add(1, actions[:, None], torch.ones_like(actions)[:, None])

    def backward_step(self, states, actions):
        return states.scatter_add(1, actions[:, None], torch.full_like(actions, -1)[:, None])

    def log_reward(self, states):
        outer, band = self._outer[states].all(1), self._band[states].all(1)
        reward = self.r0 + self.r1 * outer.double() + self.r2 * band.double()
        return torch.log(reward)

    def features(self, states):
        """One-hot of every coordinate (torchgfn's KHot preprocessor), written by one scatter (``one_hot``
        checks its input's range on every call: a fifth of a sampling step on small grids)."""
        columns = states + self._feature_offsets
        return torch.zeros(len(states), self.ndim * self.height).scatter_(1, columns, 1.0)

    def level(self, states):
        return states.sum(1)

    def state_keys(self, states):
        return self.index(states) if self.height**self.ndim < 2**62 else None

    def all_states(self):
        grids = torch.meshgrid(*[torch.arange(self.height)] * self.ndim, indexing="ij")
        return torch.stack([g.reshape(-1) for g in grids], 1)

    def index(self, states):
        weights = self.height ** torch.arange(self.ndim - 1, -1, -1)
        return (states * weights).sum(1)

    def log_partition(self) -> float:
        return float(torch.logsumexp(self.log_reward(self.all_states()), 0)) if self.height**self.ndim else -math.inf
