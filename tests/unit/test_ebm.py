"""The vector EBM: its defaults follow the data's dimension, and its exact persistent chains find every mode."""

import math

import pytest
import torch

from boltzmatch.errors import BoltzmatchError
from boltzmatch.generative.ebm import EBM, IMAGES, LOW_DIMENSIONAL


def test_low_dimensional_data_get_mala_chains_and_images_the_short_run_settings():
    assert EBM(2).options["sampler"] == "mala" and EBM(2).options == LOW_DIMENSIONAL
    assert EBM(64).options == IMAGES and EBM(64).options["sampler"] == "sgld"
    assert EBM.training_for(2)["steps"] > EBM.training_for(64)["steps"]
    assert EBM(64, options={"sampler": "mala"}).options["sampler"] == "mala"  # the user's choice wins
    with pytest.raises(BoltzmatchError, match="sampler must be 'mala' or 'sgld'"):
        EBM(2, options={"sampler": "hmc"})


def test_persistent_mala_chains_learn_two_unequal_modes_in_their_proportions():
    """Data: 70 % at (−0.5, 0), 30 % at (0.5, 0), σ 0.08 (normalised units). The trained EBM's samples
    visit both modes in about those shares, and the step size adapted to ~57 % acceptance."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    n = 4000
    left = torch.rand(n, generator=generator) < 0.7
    centres = torch.where(left[:, None], torch.tensor([-0.5, 0.0]), torch.tensor([0.5, 0.0]))
    data = centres + 0.08 * torch.randn(n, 2, generator=generator)
    model = EBM(2, options={"hidden": [64, 64], "steps": 20, "buffer": 2048})
    model.build_optimizers(1e-3)
    for _ in range(1500):
        metrics = model.train_step(data[torch.randint(n, (128,), generator=generator)], None, generator)
    assert metrics["acceptance"] == pytest.approx(0.57, abs=0.1)
    samples = model.sample(2000, generator)
    near_left = ((samples - torch.tensor([-0.5, 0.0])).norm(dim=1) < 0.25).float().mean()
    near_right = ((samples - torch.tensor([0.5, 0.0])).norm(dim=1) < 0.25).float().mean()
    assert near_left + near_right > 0.85
    assert float(near_left / (near_left + near_right)) == pytest.approx(0.7, abs=0.1)


def test_cosine_schedule_takes_the_lr_to_zero_over_the_planned_updates_and_survives_a_restart():
    generator = torch.Generator().manual_seed(0)
    data = torch.rand(64, 2, generator=generator) - 0.5
    model = EBM(2, options={"hidden": [8], "steps": 1, "buffer": 64})
    model.build_optimizers(1e-3)
    model.plan(10)
    for _ in range(5):
        model.train_step(data, None, generator)
    group = model.optimizers["adam"].param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 10)))
    restarted = EBM(2, options={"hidden": [8], "steps": 1, "buffer": 64})
    restarted.load_extra_state(model.extra_state())
    assert restarted.updates == 5
    constant = EBM(64)  # images keep a constant lr
    assert constant.options["lr_schedule"] == "constant"
