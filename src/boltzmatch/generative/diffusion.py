"""Score-based diffusion (Song et al. 2021): VP and VE SDEs, denoising score matching over the
noise schedule, three samplers and the exact-ODE log-likelihood.

- VP: dx = −½β(t)x dt + √β(t) dW, β linear from ``beta_min`` to ``beta_max``; x_t = α_t x_0 + σ_t ε.
- VE: dx = √(d σ²/dt) dW, σ(t) = σ_min (σ_max/σ_min)^t; x_t = x_0 + σ_t ε. σ_max defaults to the
  largest distance between training points (Song and Ermon 2020's first technique).

The network predicts ε̂(x_t, t) (λ(t) = σ_t² weighting, so the loss is ‖ε̂ − ε‖²) and the score is
s = −ε̂/σ_t. Samplers: ``euler-maruyama`` (reverse SDE), ``ode`` (probability flow, scipy's
``solve_ivp``), ``annealed-langevin`` (Langevin at a decreasing ladder of noise levels).
:meth:`Diffusion.log_likelihood` integrates the probability-flow ODE with the divergence by
Hutchinson's estimator (Rademacher probes, fixed along the path).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..errors import BoltzmatchError
from ..simulate.langevin import annealed_langevin
from .base import Family, mlp

SDES = ("vp", "ve")
SAMPLERS = ("euler-maruyama", "ode", "annealed-langevin")


class TimeEmbedding(nn.Module):
    """Random Fourier features of log-time-like inputs (Tancik et al.), fixed at construction."""

    def __init__(self, size: int = 32, scale: float = 16.0):
        super().__init__()
        # drawn on the CPU (the same frequencies on any device), then where the module is made
        w = torch.randn(size // 2, generator=torch.Generator().manual_seed(0), device="cpu")
        self.register_buffer("w", w.to(torch.get_default_device()) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * t[:, None] * self.w[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class ScheduleMixin:
    """Marginals and coefficients of the forward SDE (t ∈ [t_min, 1])."""

    options: dict

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean factor α_t and standard deviation σ_t of x_t given x_0."""
        o = self.options
        if o["sde"] == "vp":
            integral = o["beta_min"] * t + 0.5 * (o["beta_max"] - o["beta_min"]) * t**2
            alpha = torch.exp(-0.5 * integral)
            return alpha, torch.sqrt(-torch.expm1(-integral))
        sigma = o["sigma_min"] * (o["sigma_max"] / o["sigma_min"]) ** t
        return torch.ones_like(t), sigma

    def drift_diffusion(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x, t) and g(t)² of the forward SDE."""
        o = self.options
        if o["sde"] == "vp":
            beta = o["beta_min"] + t * (o["beta_max"] - o["beta_min"])
            return -0.5 * beta[:, None] * x, beta
        sigma = o["sigma_min"] * (o["sigma_max"] / o["sigma_min"]) ** t
        return torch.zeros_like(x), 2 * sigma**2 * math.log(o["sigma_max"] / o["sigma_min"])

    def prior_std(self) -> float:
        return 1.0 if self.options["sde"] == "vp" else float(self.options["sigma_max"])


class Diffusion(ScheduleMixin, Family):
    name = "diffusion"
    scaling = "standard"
    defaults = {"sde": "vp", "hidden": [256, 256, 256], "embedding": 64, "beta_min": 0.1, "beta_max": 20.0,
                "sigma_min": 0.01, "sigma_max": None, "t_min": 1e-3, "sampler": "euler-maruyama",
                "sample_steps": 1000, "langevin_steps": 10, "langevin_snr": 0.1, "ode_tolerance": 1e-5,
                "nll_probes": 1, "ema": 0.999}
    training = {"steps": 15000, "batch_size": 256, "lr": 1e-3}

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        super().__init__(dim, n_classes, options)
        if self.options["sde"] not in SDES:
            raise BoltzmatchError(f"diffusion: unknown sde {self.options['sde']!r}; expected one of {', '.join(SDES)}")
        self.nets["time"] = TimeEmbedding(self.options["embedding"])
        self.nets["eps"] = mlp([dim + self.options["embedding"], *self.options["hidden"], dim])
        # an exponential moving average of the weights samples better than the last iterate
        self.nets["ema"] = copy.deepcopy(self.nets["eps"]).requires_grad_(False)

    def build_optimizers(self, lr: float) -> None:
        self.optimizers = {"adam": torch.optim.Adam(self.nets["eps"].parameters(), lr=lr)}

    def fit_data(self, x: torch.Tensor) -> None:
        if self.options["sde"] == "ve" and self.options["sigma_max"] is None:
            picks = torch.randperm(len(x), generator=torch.Generator().manual_seed(0), device="cpu")[:2000]
            sub = x[picks.to(x.device)]
            self.options["sigma_max"] = round(float(torch.cdist(sub, sub).max()), 4)

    def epsilon(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε̂(x, t): the training network in training mode, its moving average otherwise."""
        net = self.nets["eps"] if self.nets.training or not self.options["ema"] else self.nets["ema"]
        return net(torch.cat([x, self.nets["time"](t)], dim=-1))

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -self.epsilon(x, t) / self.alpha_sigma(t)[1][:, None]

    def train_step(self, x, y, generator):
        t_min = self.options["t_min"]
        t = t_min + (1 - t_min) * torch.rand(len(x), generator=generator)
        eps = torch.randn(x.shape, generator=generator)
        alpha, sigma = self.alpha_sigma(t)
        loss = ((self.epsilon(alpha[:, None] * x + sigma[:, None] * eps, t) - eps) ** 2).sum(-1).mean()
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay = self.options["ema"]
        if decay:
            with torch.no_grad():
                for averaged, current in zip(self.nets["ema"].parameters(), self.nets["eps"].parameters()):
                    averaged.lerp_(current, 1.0 - decay)
        return {"loss": float(loss.detach())}

    # --- samplers ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n, generator, labels=None, sampler: str | None = None, steps: int | None = None, **options):
        sampler = sampler or self.options["sampler"]
        steps = steps or self.options["sample_steps"]
        x = self.prior_std() * torch.randn(n, self.dim, generator=generator)
        if sampler == "euler-maruyama":
            return self._euler_maruyama(x, steps, generator)
        if sampler == "ode":
            return self._ode(x, 1.0, self.options["t_min"])[0]
        if sampler == "annealed-langevin":
            return self._annealed_langevin(x, steps, generator)
        raise BoltzmatchError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")

    def _euler_maruyama(self, x, steps, generator):
        times = torch.linspace(1.0, self.options["t_min"], steps + 1)
        for i in range(steps):
            t, dt = times[i].expand(len(x)), float(times[i] - times[i + 1])
            f, g2 = self.drift_diffusion(x, t)
            g2 = g2 if g2.dim() else g2.expand(len(x))
            x = x - (f - g2[:, None] * self.score(x, t)) * dt
            if i < steps - 1:  # the last step returns the mean (Song et al.'s "denoise" step)
                x = x + torch.sqrt(g2 * dt)[:, None] * torch.randn(x.shape, generator=generator)
        return x

    def _annealed_langevin(self, x, levels, generator):
        """Langevin at ``levels`` noise levels from t = 1 down to t_min, ``langevin_steps`` each,
        step size set by the signal-to-noise ratio ``langevin_snr`` (Song et al.'s corrector)."""
        snr = self.options["langevin_snr"]

        def step_size(t_value, grad, noise):
            # batch-mean norms as in Song et al.'s corrector: per-point ratios explode at the modes
            return 2 * (snr * noise.norm(dim=-1).mean() / grad.norm(dim=-1).mean().clamp_min(1e-12)) ** 2

        return annealed_langevin(lambda x, t_value: self.score(x, t_value.expand(len(x))), x,
                                 torch.linspace(1.0, self.options["t_min"], levels),
                                 steps_per_level=self.options["langevin_steps"], step_size=step_size,
                                 generator=generator)

    def _ode_drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        f, g2 = self.drift_diffusion(x, t)
        g2 = g2 if g2.dim() else g2.expand(len(x))
        return f - 0.5 * g2[:, None] * self.score(x, t)

    def _ode(self, x: torch.Tensor, t0: float, t1: float, probes: torch.Tensor | None = None):
        """Integrate the probability-flow ODE from t0 to t1 (scipy RK45); with Hutchinson ``probes``
        (k, n, d) also ∫ ∇·drift dt per point. Returns (x(t1), integral or None)."""
        from scipy.integrate import solve_ivp

        n, d = x.shape
        tol = self.options["ode_tolerance"]

        def rhs(t_value, state):
            xs = torch.as_tensor(state[: n * d], dtype=torch.float32).reshape(n, d)
            t = torch.full((n,), float(t_value))
            if probes is None:
                with torch.no_grad():
                    return self._ode_drift(xs, t).reshape(-1).double().cpu().numpy()
            with torch.enable_grad():
                xs.requires_grad_(True)
                drift = self._ode_drift(xs, t)
                divergence = torch.zeros(n)
                for v in probes:
                    (jv,) = torch.autograd.grad((drift * v).sum(), xs, retain_graph=True)
                    divergence = divergence + (jv * v).sum(-1)
            return np.concatenate([drift.detach().reshape(-1).double().cpu().numpy(),
                                   (divergence / len(probes)).double().cpu().numpy()])

        state0 = x.reshape(-1).double().cpu().numpy()
        if probes is not None:
            state0 = np.concatenate([state0, np.zeros(n)])
        solution = solve_ivp(rhs, (t0, t1), state0, rtol=tol, atol=tol, method="RK45")
        final = solution.y[:, -1]
        xt = torch.as_tensor(final[: n * d], dtype=torch.float32).reshape(n, d)
        return xt, (None if probes is None else torch.as_tensor(final[n * d:], dtype=torch.float64))

    def log_likelihood(self, x, generator):
        """log p(x) (nats per point) by the probability-flow ODE from t_min to 1 and the Gaussian prior."""
        probes = (torch.randint(0, 2, (self.options["nll_probes"], *x.shape), generator=generator) * 2 - 1).float()
        xt, integral = self._ode(x.float(), self.options["t_min"], 1.0, probes)
        std = self.prior_std()
        prior = -0.5 * (xt.double() ** 2).sum(-1) / std**2 - 0.5 * self.dim * math.log(2 * math.pi * std**2)
        return prior + integral
