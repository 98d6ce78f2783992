"""A fully connected GAN baseline (Raschka et al., *Machine Learning with PyTorch and Scikit-Learn*,
ch. 17): generator z (20) → 100 LeakyReLU → data, tanh output; discriminator data → 100 LeakyReLU →
dropout 0.5 → logit. Non-saturating generator loss, one discriminator and one generator step per batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Family, LeakyReLU, mlp


class GAN(Family):
    name = "gan"
    scaling = "range"  # the generator's tanh covers [−1, 1]
    defaults = {"latent": 20, "hidden": [100], "dropout": 0.5, "beta1": 0.5}
    training = {"steps": 20000, "batch_size": 64, "lr": 2e-4}

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        super().__init__(dim, n_classes, options)
        o = self.options
        self.nets["generator"] = mlp([o["latent"], *o["hidden"], dim], LeakyReLU, final=nn.Tanh())
        self.nets["discriminator"] = mlp([dim, *o["hidden"], 1], LeakyReLU, dropout=o["dropout"])

    def build_optimizers(self, lr: float) -> None:
        betas = (self.options["beta1"], 0.999)
        self.optimizers = {
            "generator": torch.optim.Adam(self.nets["generator"].parameters(), lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(self.nets["discriminator"].parameters(), lr=lr, betas=betas),
        }

    def train_step(self, x, y, generator):
        bce = nn.functional.binary_cross_entropy_with_logits
        z = torch.randn(len(x), self.options["latent"], generator=generator)
        fake = self.nets["generator"](z)
        d_real, d_fake = self.nets["discriminator"](x), self.nets["discriminator"](fake.detach())
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["discriminator"].step()
        d_gen = self.nets["discriminator"](fake)
        g_loss = bce(d_gen, torch.ones_like(d_gen))
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"loss": float((d_loss + g_loss).detach()), "discriminator_loss": float(d_loss.detach()),
                "generator_loss": float(g_loss.detach()),
                "d_real": float(torch.sigmoid(d_real).mean().detach())}

    @torch.no_grad()
    def sample(self, n, generator, labels=None, **options):
        self.nets.eval()
        return self.nets["generator"](torch.randn(n, self.options["latent"], generator=generator))
