"""Exact evaluation where the states can be enumerated: the policy's terminating distribution by
dynamic programming over the layered state DAG, and from it L1 / total variation, KL(target ‖ model),
JSD and the exact log Z; plus the empirical L1 from N samples as torchgfn reports it
(``Σ_x |p̂(x) − R(x)/Z|`` over terminal states, p̂ the sample frequencies)."""

from __future__ import annotations

import torch

from ..analysis.metrics import jensen_shannon
from ..errors import BoltzmatchError
from .env import Environment
from .model import GFlowNetModel, forward_log_probs
from .sampler import sample_trajectories

CHUNK = 65536


@torch.no_grad()
def policy_log_probs(env: Environment, model: GFlowNetModel, states: torch.Tensor) -> torch.Tensor:
    parts = []
    for begin in range(0, len(states), CHUNK):
        chunk = states[begin:begin + CHUNK]
        logits = model.forward_logits(env.features(chunk))
        parts.append(forward_log_probs(env, model, chunk, logits))
    return torch.cat(parts)


@torch.no_grad()
def terminating_distribution(env: Environment, model: GFlowNetModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_T over all states, float64, zero where exit is not allowed; the states) by pushing the
    probability of reaching each state level by level."""
    if not env.enumerable:
        raise BoltzmatchError(f"{env.name}: the state space is not enumerable; exact evaluation is unavailable")
    states = env.all_states()
    log_pf = policy_log_probs(env, model, states).double()
    pf = log_pf.exp()
    mask = env.forward_mask(states)
    levels = env.level(states)
    reach = torch.zeros(len(states), dtype=torch.float64)
    reach[env.index(env.initial(1))] = 1.0
    for level in range(int(levels.max()) + 1):
        rows = torch.nonzero(levels == level).squeeze(1)
        if not len(rows):
            continue
        for action in range(env.n_actions - 1):
            allowed = rows[mask[rows, action]]
            if len(allowed):
                children = env.step(states[allowed], torch.full((len(allowed),), action))
                reach.index_add_(0, env.index(children), reach[allowed] * pf[allowed, action])
    return reach * pf[:, env.exit_action] * mask[:, env.exit_action], states


def model_log_z(env: Environment, model: GFlowNetModel, loss: str) -> float:
    """The model's own estimate of log Z: the parameter (tb, subtb), log F(s_0) (db), or the total
    flow out of s_0 (fm)."""
    with torch.no_grad():
        s0 = env.initial(1)
        logits, _, log_flow = model.heads(env.features(s0))
        if loss == "db":
            return float(log_flow[0])
        if loss == "fm":
            mask = env.forward_mask(s0)[0]
            terms = torch.cat([logits[0, :-1], env.log_reward(s0).float()])[mask]
            return float(torch.logsumexp(terms, 0))
        return float(model.log_z)


def exact_distributions(env: Environment, model: GFlowNetModel
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """(P_T, the target R/Z, both over all states and zero off the terminal ones; the states; exact log Z)."""
    p_model, states = terminating_distribution(env, model)
    log_reward = env.log_reward(states)
    terminal = env.forward_mask(states)[:, env.exit_action]
    log_z_true = float(torch.logsumexp(log_reward[terminal], 0))
    target = torch.where(terminal, (log_reward - log_z_true).exp(), torch.zeros_like(log_reward))
    return p_model, target, states, log_z_true


def evaluate_exact(env: Environment, model: GFlowNetModel, loss: str, n_samples: int = 0,
                   seed: int = 0, distributions: tuple | None = None) -> dict:
    """``l1_exact``, ``tv_exact``, ``kl_exact`` (KL(R/Z ‖ P_T), nats), ``jsd_exact`` (nats),
    ``log_z`` (the model's), ``log_z_true`` and, with ``n_samples``, ``l1_empirical``.
    ``distributions``: :func:`exact_distributions` when the caller already has them."""
    model.eval()
    p_model, target, states, log_z_true = distributions or exact_distributions(env, model)
    terminal = env.forward_mask(states)[:, env.exit_action]
    l1 = float((p_model - target).abs().sum())
    kl = float((target[terminal] * (target[terminal].log() - p_model[terminal].clamp_min(1e-300).log())).sum())
    result = {"l1_exact": l1, "tv_exact": 0.5 * l1, "kl_exact": kl,
              "jsd_exact": jensen_shannon(target.cpu().numpy(), p_model.cpu().numpy()),
              "log_z": model_log_z(env, model, loss), "log_z_true": log_z_true, "n_states": int(len(states)),
              "policy_mass": float(p_model.sum())}
    if n_samples:
        result["l1_empirical"] = empirical_l1(env, model, target, n_samples, seed)
        result["l1_empirical_floor"] = sampling_floor_l1(target, n_samples, seed)
    return result


def sampling_floor_l1(target: torch.Tensor, n_samples: int, seed: int) -> float:
    """The empirical L1 that ``n_samples`` exact draws from ``target`` score: what a perfect sampler
    reports (with many states and few samples it dominates :func:`empirical_l1`)."""
    generator = torch.Generator(device=target.device).manual_seed(seed)
    draws = torch.multinomial(target.double(), n_samples, replacement=True, generator=generator)
    counts = torch.bincount(draws, minlength=len(target)).double()
    return float((counts / n_samples - target).abs().sum())


def empirical_l1(env: Environment, model: GFlowNetModel, target: torch.Tensor, n_samples: int, seed: int) -> float:
    generator = torch.Generator(device=torch.get_default_device()).manual_seed(seed)
    counts = torch.zeros(len(target), dtype=torch.float64)
    remaining = n_samples
    while remaining > 0:
        batch = sample_trajectories(env, model, min(remaining, 4096), generator)
        counts.index_add_(0, env.index(batch.terminal), torch.ones(batch.n, dtype=torch.float64))
        remaining -= batch.n
    return float((counts / n_samples - target).abs().sum())
