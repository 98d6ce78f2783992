"""Diffusion samplers and the ODE likelihood with the exact score of Gaussian data (known answers)."""

import math

import pytest
import torch

from boltzmatch.generative.diffusion import Diffusion

MEAN, STD = torch.tensor([1.5, -0.5]), 0.7


def gaussian_model(sde: str, mean: torch.Tensor = MEAN) -> Diffusion:
    # the prior must cover the data's marginal at t = 1 (Song et al.: σ_max ≥ the largest data
    # distance; β_max large enough that α(1) ≈ 0); the rest of the error is the sampler's own
    options = {"sde": sde, "hidden": [8], "beta_max": 40.0, "sigma_max": 50.0}
    model = Diffusion(2, options=options)
    model.train_mode(False)

    def score(x, t):  # data N(MEAN, STD² I) → marginal N(α MEAN, α² STD² + σ²)
        alpha, sigma = model.alpha_sigma(t)
        var = alpha**2 * STD**2 + sigma**2
        return -(x - alpha[:, None] * mean) / var[:, None]

    model.score = score
    return model


@pytest.mark.parametrize("sde", ["vp", "ve"])
@pytest.mark.parametrize("sampler", ["euler-maruyama", "ode", "annealed-langevin"])
def test_samplers_reproduce_gaussian_moments(sde, sampler):
    model = gaussian_model(sde)
    steps = {"euler-maruyama": 500, "ode": None, "annealed-langevin": 300}[sampler]
    x = model.sample(3000, torch.Generator().manual_seed(0), sampler=sampler, steps=steps)
    assert torch.allclose(x.mean(0), MEAN, atol=0.06)
    assert torch.allclose(x.std(0), torch.full((2,), STD), atol=0.05)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_ode_log_likelihood_equals_the_gaussian_density(sde):
    # zero-mean data: the prior N(0, σ_max²) then differs from the true marginal at t = 1 only by
    # STD² in the variance (a mean of 1.5 would cost ≈ 1.5·x/σ_max, ~0.03 nats at σ_max = 50)
    mean = torch.zeros(2)
    model = gaussian_model(sde, mean)
    x = STD * torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    log_p = model.log_likelihood(x, torch.Generator().manual_seed(2))
    t = torch.full((1,), model.options["t_min"])
    alpha, sigma = model.alpha_sigma(t)  # the ODE starts at t_min: the density there, not at 0
    var = float(alpha**2 * STD**2 + sigma**2)
    exact = -0.5 * (x**2).sum(-1) / var - math.log(2 * math.pi * var)
    assert torch.allclose(log_p.float(), exact, atol=2e-3)


def test_vp_marginals_match_the_sde_integral():
    model = Diffusion(2)
    t = torch.tensor([0.0, 0.3, 1.0])
    alpha, sigma = model.alpha_sigma(t)
    integral = 0.1 * t + 0.5 * (20.0 - 0.1) * t**2
    assert torch.allclose(alpha, torch.exp(-0.5 * integral))
    assert torch.allclose(alpha**2 + sigma**2, torch.ones(3), atol=1e-6)  # variance preserving


def test_trained_noise_predictor_approaches_the_optimal_denoising_loss():
    # for Gaussian data the optimal ε̂ is −σ·(exact score); training must get close to its loss
    torch.manual_seed(0)
    model = Diffusion(2, options={"hidden": [64, 64], "ema": 0.0})
    model.build_optimizers(3e-3)
    generator = torch.Generator().manual_seed(0)
    data = MEAN + STD * torch.randn(20000, 2, generator=generator)
    first = None
    for _ in range(1500):
        metrics = model.train_step(data[torch.randint(len(data), (256,), generator=generator)], None, generator)
        first = metrics["loss"] if first is None else first
    exact = gaussian_model("vp")
    exact.options.update(model.options)
    t = 1e-3 + (1 - 1e-3) * torch.rand(len(data), generator=generator)
    eps = torch.randn(data.shape, generator=generator)
    alpha, sigma = model.alpha_sigma(t)
    noisy = alpha[:, None] * data + sigma[:, None] * eps
    with torch.no_grad():
        trained = ((model.epsilon(noisy, t) - eps) ** 2).sum(-1).mean()
        optimal = ((-sigma[:, None] * exact.score(noisy, t) - eps) ** 2).sum(-1).mean()
    assert float(optimal) < float(trained) < 1.05 * float(optimal)
    assert float(trained) < 0.5 * first
