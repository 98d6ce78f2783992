"""Adam for GFlowNet policies through torch's functional (fused) Adam, without ``torch.optim.Optimizer``.

Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (its ``add_param_group`` is wrapped
by ``torch._disable_dynamo``): 1.6 s on this project's 2-core machines, as long as importing torch
itself, paid by every ``gflownet train`` process whether or not anything is compiled. A GFlowNet run at
torchgfn's settings trains for ~3 s, so that import was a third of the process. The update itself is
torch's own ``torch.optim.adam.adam`` (the same kernels as ``torch.optim.Adam(fused=True)``, to the bit:
tests/unit/test_gflownet_adam.py); this class only keeps the moments and the step count per parameter,
in the same ``state_dict`` layout as ``torch.optim.Adam``, so checkpoints written by either load in the other.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


class FunctionalAdam:
    """Adam (β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay) over parameter groups ``[{"params": [...], "lr": x}]``."""

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, groups: list[dict]):
        self.param_groups = [{"params": list(group["params"]), "lr": float(group["lr"])} for group in groups]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _state_of(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if p not in self.state:
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state_of(p) for p in params]
            adam(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                 [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states], foreach=False,
                 capturable=False, differentiable=False, fused=True, grad_scale=None, found_inf=None,
                 has_complex=False, amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=group["lr"],
                 weight_decay=0.0, eps=self.eps, maximize=False)

    def state_dict(self) -> dict:
        """``torch.optim.Adam``'s layout: state keyed by the parameter's index over all groups."""
        index = {p: i for i, p in enumerate(self._parameters())}
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({"lr": group["lr"], "betas": self.betas, "eps": self.eps, "weight_decay": 0.0,
                           "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                           "differentiable": False, "fused": True, "decoupled_weight_decay": False,
                           "params": list(range(start, start + n))})
            start += n
        return {"state": {index[p]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        params = self._parameters()
        if len(state_dict["param_groups"]) != len(self.param_groups):
            raise ValueError("the optimizer state has a different number of parameter groups")
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group["lr"] = float(saved["lr"])
        self.state = {}
        for i, saved in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {"step": saved["step"].detach().to(p.device, torch.float32).reshape(()).clone(),
                             "exp_avg": saved["exp_avg"].detach().to(p).clone(),
                             "exp_avg_sq": saved["exp_avg_sq"].detach().to(p).clone()}
