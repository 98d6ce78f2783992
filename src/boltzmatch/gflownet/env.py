"""The environment protocol of the GFlowNets: states as tensors, masked forward and backward actions,
log rewards, and (where the state space is small) enumeration.

Conventions: a batch of states is a tensor ``(n, *state_shape)``; forward actions are
``0 … n_actions − 1`` with the last one, ``exit``, ending the trajectory at the current state (the
object x); backward actions ``0 … n_backward − 1`` undo a forward action, and
``forward_of_backward(b)`` names the forward action that backward action b undoes (flow matching
needs the parents). Every reward is in log space. ``level(states)`` counts the forward steps from the
initial state (the state DAG is layered by it), which the exact evaluation walks through.
"""

from __future__ import annotations

import torch


class Environment:
    """Base class; subclasses set ``name``, ``n_actions``, ``n_backward``, ``max_length`` and implement the methods."""

    name = "base"
    n_actions: int
    n_backward: int
    max_length: int  # the most forward steps before exit
    enumerable = False

    @property
    def exit_action(self) -> int:
        return self.n_actions - 1

    def initial(self, n: int) -> torch.Tensor:
        """``n`` copies of the one initial state s_0 (the sampler and the losses evaluate the policy there
        once and share it)."""
        raise NotImplementedError

    def forward_mask(self, states: torch.Tensor) -> torch.Tensor:
        """(n, n_actions) bool: allowed forward actions (exit included where the state may end)."""
        raise NotImplementedError

    def backward_mask(self, states: torch.Tensor) -> torch.Tensor:
        """(n, n_backward) bool: allowed backward actions (none at the initial state)."""
        raise NotImplementedError

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """States after the (non-exit) forward ``actions``."""
        raise NotImplementedError

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_of_backward(self, actions: torch.Tensor) -> torch.Tensor:
        """The forward action each backward action undoes."""
        return actions

    def backward_of_forward(self, actions: torch.Tensor) -> torch.Tensor:
        """The backward action that undoes each (non-exit) forward action."""
        return actions

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        """(n,) log R(x) of terminal objects."""
        raise NotImplementedError

    def features(self, states: torch.Tensor) -> torch.Tensor:
        """(n, n_features) float input of the policy networks."""
        raise NotImplementedError

    def state_keys(self, states: torch.Tensor) -> torch.Tensor | None:
        """(n,) int64, equal exactly where the states are equal (the losses then run the policy once per
        distinct state of a batch); None where the environment has no such key (only s_0 is then shared)."""
        return None

    @property
    def n_features(self) -> int:
        return int(self.features(self.initial(1)).shape[1])

    def level(self, states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # enumerable environments -------------------------------------------------------------------------
    def all_states(self) -> torch.Tensor:
        raise NotImplementedError

    def index(self, states: torch.Tensor) -> torch.Tensor:
        """(n,) position of each state in :meth:`all_states`."""
        raise NotImplementedError

    def options(self) -> dict:
        """The constructor arguments (stored in the run's config.yaml)."""
        return {}
