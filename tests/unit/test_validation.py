"""Validation computes the errors and a predictive objective (supervised losses, fisher) from one evaluation
per chunk: the same numbers as a pass of its own, with half the model calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boltzmatch.data.packed import PackedStructures
from boltzmatch.models import build_model
from boltzmatch.objectives import make_objective
from boltzmatch.training.distributed import Distributed
from boltzmatch.training.validation import objective_loss, split_errors, validate
from helpers import labelled_molecules

OBJECTIVES = [("energy-forces", {}), ("forces", {}), ("energy", {}),
              ("fisher", {"temperature": 500.0, "energy_weight": 0.0, "force_weight": 0.0}),
              ("fisher", {"temperature": 500.0, "energy_weight": 1.0, "force_weight": 10.0}),
              ("fisher", {"temperature": 500.0, "energy_weight": 0.0, "force_weight": 0.0, "huber_delta": 0.5})]


class Counting(torch.nn.Module):
    """A model that counts its forward calls."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, batch):
        self.calls += 1
        return self.net(batch)


def _setup():
    # two molecules of different sizes, so chunks hold unequal atom counts
    structures = labelled_molecules(11, seed=1) + labelled_molecules(10, seed=2, name="CH3OH")
    torch.manual_seed(0)
    net = build_model({"name": "schnet", "elements": [1, 6, 8], "n_features": 8, "n_interactions": 1})
    return Counting(net), PackedStructures(structures, dtype=torch.float32)


@pytest.mark.parametrize(("name", "options"), OBJECTIVES)
def test_a_predictive_objective_comes_from_the_evaluations_of_the_errors(name, options):
    model, packed = _setup()
    objective, dist = make_objective(name, **options), Distributed()
    indices = np.arange(len(packed))[::-1].copy()
    errors, loss = validate(objective, model, packed, indices, 8, seed=0, dist=dist)
    assert model.calls == 3  # ceil(21 / 8) chunks, one evaluation each
    assert errors == pytest.approx(split_errors(model, packed, indices, 8), rel=1e-6)
    assert loss == pytest.approx(objective_loss(objective, model, packed, indices, 8, 0, dist), rel=1e-5)


def test_an_objective_that_needs_the_model_gets_a_pass_of_its_own():
    model, packed = _setup()
    objective, dist = make_objective("dsm", temperature=500.0, sigma=[0.05], energy_weight=0.0,
                                       force_weight=0.0), Distributed()
    indices = np.arange(len(packed))
    errors, loss = validate(objective, model, packed, indices, 8, seed=3, dist=dist)
    assert model.calls == 3 + 6  # the errors in chunks of 8, dsm in chunks of 4 (the training batch)
    assert loss == objective_loss(objective, model, packed, indices, 4, 3, dist)  # the same noise: the same seed
    assert errors == pytest.approx(split_errors(model, packed, indices, 8), rel=1e-6)
