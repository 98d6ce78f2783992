"""Batched trajectory sampling: all trajectories advance together, one policy call per step.

On-policy with ε-exploration (a fraction ε of steps picks uniformly among allowed actions) and a
temperature on the forward logits; the log-probabilities stored are always those of the policy
itself (off-policy exploration changes which trajectories are seen, not what they are scored by).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .env import Environment
from .model import GFlowNetModel, forward_log_probs


@dataclass
class Trajectories:
    """Padded batch of ``n`` trajectories, ``T`` = the env's max_length + 1 time slots.

    states : (T + 1, n, *shape), states[t] before action t (repeated after the end);
    actions : (T, n) long, −1 after the end; lengths : (n,) number of forward steps including exit;
    terminal : (n, *shape) the objects x; log_reward : (n,).
    """

    states: torch.Tensor
    actions: torch.Tensor
    lengths: torch.Tensor
    terminal: torch.Tensor
    log_reward: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.lengths.shape[0])


def sample_trajectories(env: Environment, model: GFlowNetModel, n: int, generator: torch.Generator,
                        epsilon: float = 0.0, temperature: float = 1.0) -> Trajectories:
    slots = env.max_length + 1
    state = env.initial(n)
    states = [state]
    actions = torch.full((slots, n), -1, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    lengths = torch.zeros(n, dtype=torch.long)
    terminal = state.clone()
    with torch.no_grad():
        for t in range(slots):
            if done.all():
                states.append(state)
                continue
            mask = env.forward_mask(state)
            logits, _, _ = model.heads(env.features(state))
            probs = forward_log_probs(env, model, state, logits, temperature).exp()
            if epsilon > 0:
                uniform = mask.float() / mask.sum(1, keepdim=True)
                probs = (1 - epsilon) * probs + epsilon * uniform
            action = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            action = torch.where(done, torch.full_like(action, -1), action)
            actions[t] = action
            exiting = (action == env.exit_action) & ~done
            terminal[exiting] = state[exiting]
            moving = ~done & ~exiting
            if moving.any():
                new_state = state.clone()
                new_state[moving] = env.step(state[moving], action[moving])
                state = new_state
            lengths += (~done).long()
            done = done | exiting
            states.append(state)
    return Trajectories(torch.stack(states), actions, lengths, terminal, env.log_reward(terminal))


def trajectory_log_probs(env: Environment, model: GFlowNetModel, batch: Trajectories
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """With gradients: per-step log P_F (T, n), log P_B (T, n) of the transition out of step t (0 for
    exit and padding), log F(s_t) (T + 1, n), and the valid-step mask (T, n)."""
    from .model import backward_log_probs

    slots, n = batch.actions.shape
    flat = batch.states.reshape(-1, *batch.states.shape[2:])
    logits, back_logits, log_flow = model.heads(env.features(flat))
    logits = logits.reshape(slots + 1, n, -1)
    back_logits = back_logits.reshape(slots + 1, n, -1)
    log_flow = log_flow.reshape(slots + 1, n)
    valid = batch.actions >= 0
    safe_actions = batch.actions.clamp_min(0)
    log_pf_all = forward_log_probs(env, model, flat, logits.reshape(len(flat), -1)).reshape(slots + 1, n, -1)
    log_pf = log_pf_all[:-1].gather(2, safe_actions[..., None]).squeeze(2)
    log_pf = torch.where(valid, log_pf, torch.zeros_like(log_pf))
    # backward: from s_{t+1} back to s_t, the backward action undoing forward action a_t
    b_mask = env.backward_mask(flat).reshape(slots + 1, n, -1)
    moves = valid & (batch.actions != env.exit_action)
    log_pb_all = backward_log_probs(model, back_logits[1:], b_mask[1:])
    backward_action = torch.where(moves, env.backward_of_forward(safe_actions), torch.zeros_like(safe_actions))
    log_pb = log_pb_all.gather(2, backward_action[..., None]).squeeze(2)
    log_pb = torch.where(moves, log_pb, torch.zeros_like(log_pb))
    return log_pf, log_pb, log_flow, valid
