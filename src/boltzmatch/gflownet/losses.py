"""GFlowNet objectives on a batch of trajectories (log space throughout).

- ``tb`` trajectory balance (Malkin et al. 2022): ``(log Z + Σ log P_F − log R(x) − Σ log P_B)²``.
- ``db`` detailed balance (Bengio et al. 2023): per transition ``(log F(s) + log P_F(s'|s) − log F(s')
  − log P_B(s|s'))²``, and at the exit ``(log F(x) + log P_F(exit|x) − log R(x))²``.
- ``subtb`` sub-trajectory balance (Madan et al. 2023): every sub-trajectory i < j of s_0 … s_n and
  the sink after exit (flow R(x)), F(s_0) = Z, weighted λ^(j−i) and normalised per trajectory.
- ``fm`` flow matching (Bengio et al. 2021): at each visited state, log of the inflow Σ_parents
  F(p→s) against log(outflow + R(s)); edge flows are exp of the forward logits, the exit edge R(s) where
  exit is allowed.
"""

from __future__ import annotations

import torch

from .env import Environment
from .model import NEG_INF, GFlowNetModel
from .sampler import Trajectories, trajectory_log_probs

LOSSES = ("tb", "db", "subtb", "fm")


def gflownet_loss(name: str, env: Environment, model: GFlowNetModel, batch: Trajectories,
                  subtb_lambda: float = 0.9) -> torch.Tensor:
    if name == "fm":
        return flow_matching(env, model, batch)
    log_pf, log_pb, log_flow, valid = trajectory_log_probs(env, model, batch)
    n = batch.n
    steps = torch.arange(log_pf.shape[0])[:, None]
    exit_step = (batch.lengths - 1)[None, :]  # the slot of the exit action
    moves = valid & (steps < exit_step)
    if name == "tb":
        total = (log_pf * valid).sum(0) - (log_pb * moves).sum(0)
        return ((model.log_z + total - batch.log_reward) ** 2).mean()
    log_pf_exit = log_pf.gather(0, exit_step).squeeze(0)
    if name == "db":
        residual = log_flow[:-1] + log_pf - log_flow[1:] - log_pb
        transitions = (residual**2 * moves).sum(0)
        exit_term = (log_flow.gather(0, exit_step).squeeze(0) + log_pf_exit - batch.log_reward) ** 2
        return ((transitions + exit_term) / batch.lengths).mean()
    if name == "subtb":
        # positions 0 … T + 1: the states s_0 … s_n, then the sink after exit, whose flow is R(x);
        # F(s_0) = Z; the step into the sink carries log P_F(exit|x) and no backward term
        sink = batch.lengths[None, :]
        # (position L = lengths holds a repeat of the last state after exit: the sink takes it over)
        flows = torch.cat([model.log_z.expand(1, n), log_flow[1:]])
        flows = flows.scatter(0, sink, batch.log_reward[None, :].to(flows.dtype))
        increments = log_pf * valid - log_pb * moves
        cumulative = torch.cat([torch.zeros(1, n), increments.cumsum(0)])
        residual = flows[:, None, :] + cumulative[None, :, :] - cumulative[:, None, :] - flows[None, :, :]
        i = torch.arange(flows.shape[0])
        span = (i[None, :] - i[:, None]).float()  # j − i
        inside = (span[:, :, None] > 0) & (i[None, :, None] <= sink)
        weights = (subtb_lambda ** span)[:, :, None] * inside
        return ((weights * residual**2).sum((0, 1)) / weights.sum((0, 1))).mean()
    raise ValueError(f"unknown GFlowNet loss {name!r}; expected one of {', '.join(LOSSES)}")


def flow_matching(env: Environment, model: GFlowNetModel, batch: Trajectories) -> torch.Tensor:
    slots, n = batch.actions.shape
    steps = torch.arange(slots + 1)[:, None]
    visited = (steps >= 1) & (steps <= (batch.lengths - 1)[None, :])  # non-initial states up to x
    states = batch.states[visited]  # (m, *shape)
    # inflow: every parent p = backward_step(s, b) with edge p → s by forward action forward_of_backward(b)
    # every parent p = backward_step(s, b) with edge p → s by forward action forward_of_backward(b),
    # parents and states together in one policy call
    b_mask = env.backward_mask(states)
    rows, moves = b_mask.nonzero(as_tuple=True)
    parents = env.backward_step(states[rows], moves)
    all_logits = model.forward_logits(env.features(torch.cat([parents, states])))
    edge = all_logits[:len(parents)].gather(1, env.forward_of_backward(moves)[:, None]).squeeze(1)
    inflow_terms = torch.full(b_mask.shape, NEG_INF, dtype=edge.dtype).index_put((rows, moves), edge)
    log_inflow = torch.logsumexp(inflow_terms, 1)
    logits = all_logits[len(parents):]
    mask = env.forward_mask(states)
    out_terms = logits.masked_fill(~mask, NEG_INF)
    # the exit edge's flow is R(s), only where exit is allowed: torsion states with unset torsions cannot end, and
    # adding R there (their log_reward is 0) made the loss 0.252 at the exact flows on alanine dipeptide (issue 38)
    exit_flow = torch.where(mask[:, -1], env.log_reward(states).to(out_terms.dtype),
                            torch.full((len(states),), NEG_INF, dtype=out_terms.dtype))
    out_terms = torch.cat([out_terms[:, :-1], exit_flow[:, None]], 1)
    log_outflow = torch.logsumexp(out_terms, 1)
    return ((log_inflow - log_outflow) ** 2).mean()
