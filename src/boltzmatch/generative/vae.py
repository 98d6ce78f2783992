"""A variational autoencoder the size of the GAN baseline: encoder data → 100 LeakyReLU → (μ, log σ²)
of z (20), decoder z → 100 LeakyReLU → mean of a Gaussian with one learned variance per dimension.
Trained on the ELBO with the reparameterisation trick; log p(x) by importance sampling with the
encoder as proposal (Burda et al. 2016): log (1/K) Σ p(x, z_k)/q(z_k | x).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Family, LeakyReLU, logmeanexp, mlp


class VAE(Family):
    name = "vae"
    scaling = "range"
    defaults = {"latent": 20, "hidden": [100], "importance_samples": 500}
    training = {"steps": 20000, "batch_size": 64, "lr": 1e-3}

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        super().__init__(dim, n_classes, options)
        o = self.options
        self.nets["encoder"] = mlp([dim, *o["hidden"], 2 * o["latent"]], LeakyReLU)
        self.nets["decoder"] = mlp([o["latent"], *o["hidden"], dim], LeakyReLU)
        self.nets["log_var"] = nn.ParameterDict({"x": nn.Parameter(torch.full((dim,), -2.0))})

    def _encode(self, x):
        mu, log_var = self.nets["encoder"](x).chunk(2, dim=-1)
        return mu, log_var.clamp(-12, 8)

    def _log_px_given_z(self, x, z):
        log_var = self.nets["log_var"]["x"].clamp(-12, 4)
        mean = self.nets["decoder"](z)
        return -0.5 * (((x - mean) ** 2) / log_var.exp() + log_var + math.log(2 * math.pi)).sum(-1)

    def train_step(self, x, y, generator):
        mu, log_var = self._encode(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator)
        reconstruction = self._log_px_given_z(x, z)
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(-1)
        loss = (kl - reconstruction).mean()  # −ELBO, nats per point
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach()), "kl": float(kl.mean().detach())}

    @torch.no_grad()
    def sample(self, n, generator, labels=None, **options):
        """x ~ p(x | z), z ~ N(0, I): the model's density, observation noise included."""
        z = torch.randn(n, self.options["latent"], generator=generator)
        mean = self.nets["decoder"](z)
        std = torch.exp(0.5 * self.nets["log_var"]["x"].clamp(-12, 4))
        return mean + std * torch.randn(mean.shape, generator=generator)

    @torch.no_grad()
    def log_likelihood(self, x, generator):
        k = self.options["importance_samples"]
        mu, log_var = self._encode(x)
        std = torch.exp(0.5 * log_var)
        values = []
        for _ in range(k):
            eps = torch.randn(mu.shape, generator=generator)
            z = mu + std * eps
            log_q = -0.5 * (eps**2 + log_var + math.log(2 * math.pi)).sum(-1)
            log_prior = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
            values.append(self._log_px_given_z(x, z) + log_prior - log_q)
        return logmeanexp(torch.stack(values), 0).double()
