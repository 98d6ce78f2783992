"""Overdamped Langevin against densities with known moments, and the replay buffer."""

import numpy as np
import pytest
import torch
from scipy import integrate

from boltzmatch.simulate.langevin import ReplayBuffer, langevin_sample


def test_langevin_reproduces_a_correlated_gaussian():
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def energy(x):
        d = x - mean
        return 0.5 * ((d @ precision) * d).sum(-1)

    generator = torch.Generator().manual_seed(0)
    x = langevin_sample(energy, torch.zeros(4000, 2, dtype=torch.float64), steps=1500, step_size=0.01,
                        generator=generator)
    assert torch.allclose(x.mean(0), mean, atol=0.05)
    # the unadjusted algorithm's covariance is (I − εA/2)⁻¹Σ to first order: ≈ 1 % at ε = 0.01
    assert torch.allclose(torch.cov(x.T), cov, atol=0.04)


def test_langevin_reproduces_a_double_well_histogram():
    def energy_np(x):
        return 2.0 * (x**2 - 1.0) ** 2

    def energy(x):
        return 2.0 * (x[:, 0] ** 2 - 1.0) ** 2

    z, _ = integrate.quad(lambda x: np.exp(-energy_np(x)), -4, 4)
    second, _ = integrate.quad(lambda x: x * x * np.exp(-energy_np(x)) / z, -4, 4)
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(20000, 1, generator=generator, dtype=torch.float64)
    x = langevin_sample(energy, start, steps=3000, step_size=0.005, generator=generator)[:, 0].numpy()
    assert np.mean(x**2) == pytest.approx(second, rel=0.03)
    assert abs(np.mean(x)) < 0.05  # both wells equally filled
    edges = np.linspace(-2, 2, 41)
    counts, _ = np.histogram(x, bins=edges)
    exact = np.array([integrate.quad(lambda v: np.exp(-energy_np(v)) / z, a, b)[0]
                      for a, b in zip(edges[:-1], edges[1:])])
    assert np.abs(counts / len(x) - exact).sum() < 0.05


def test_langevin_clamps_gradients_and_samples():
    def energy(x):
        return 1000.0 * x.sum(-1)  # gradient 1000 everywhere

    x = langevin_sample(energy, torch.zeros(5, 3), steps=1, step_size=1.0, noise=0.0, grad_clip=0.03)
    assert torch.allclose(x, torch.full((5, 3), -0.03))
    x = langevin_sample(energy, torch.zeros(5, 3), steps=3, step_size=1.0, noise=0.0, bounds=(-1.0, 1.0))
    assert torch.all(x == -1.0)


def test_replay_buffer_restarts_the_given_fraction():
    generator = torch.Generator().manual_seed(0)
    buffer = ReplayBuffer(1000, lambda n: torch.full((n, 2), 7.0), reinit=0.05, generator=generator)
    buffer.samples.zero_()
    index, start = buffer.draw(20000)
    fresh = (start[:, 0] == 7.0).float().mean()
    assert 0.04 < fresh < 0.06
    buffer.push(index[:3], torch.full((3, 2), -1.0))
    assert torch.all(buffer.samples[index[:3]] == -1.0)
    state = buffer.state_dict()
    other = ReplayBuffer(1000, lambda n: torch.full((n, 2), 7.0), generator=torch.Generator())
    other.load_state_dict(state)
    assert torch.equal(other.draw(10)[1], buffer.draw(10)[1])


def test_mala_is_exact_on_a_gaussian_where_unadjusted_steps_are_biased():
    """E = x²/(2σ²), σ = 0.5: at ε = 0.2 the unadjusted chain's stationary variance is
    σ²/(1 − ε/(2σ²)) = 0.417 (not 0.25); the Metropolis test restores 0.25."""
    from boltzmatch.simulate.langevin import mala_sample

    sigma2 = 0.25

    def energy(x):
        return (x**2).sum(1) / (2 * sigma2)

    start = torch.zeros(20_000, 1)
    generator = torch.Generator().manual_seed(0)
    exact, acceptance = mala_sample(energy, start, steps=200, step_size=0.2, generator=generator)
    biased = langevin_sample(energy, start, steps=200, step_size=0.2, generator=generator)
    assert float(exact.var()) == pytest.approx(sigma2, rel=0.05)
    assert float(biased.var()) == pytest.approx(sigma2 / (1 - 0.2 / (2 * sigma2)), rel=0.05)
    assert 0.3 < acceptance < 1.0


def test_mala_rejects_moves_out_of_the_box_and_the_step_adapts_to_the_target_acceptance():
    from boltzmatch.simulate.langevin import adapt_step, mala_sample

    def flat(x):
        return 0.0 * x.sum(1)

    generator = torch.Generator().manual_seed(1)
    samples, _ = mala_sample(flat, torch.zeros(20_000, 2), steps=100, step_size=0.05, bounds=(-1.0, 1.0),
                             generator=generator)
    assert samples.abs().max() <= 1.0
    assert float(samples.var(0).mean()) == pytest.approx(1 / 3, rel=0.05)  # uniform on [−1, 1]: variance 1/3
    step = 1.0
    for _ in range(60):
        _, acceptance = mala_sample(lambda x: (x**2).sum(1) * 50, torch.zeros(2000, 2), steps=5, step_size=step,
                                    generator=generator)
        step = adapt_step(step, acceptance)
    assert acceptance == pytest.approx(0.57, abs=0.08)
