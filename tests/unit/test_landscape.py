"""Loss landscapes against known answers: exact quadratics, filter norms, line endpoints."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import boltzmatch
from boltzmatch.analysis.landscape import (
    classifier_loss,
    energy_model_loss,
    filter_normalized_direction,
    grid_losses,
    landscape,
    norm_parameter_names,
    parameter_direction,
    trainable_parameters,
)
from boltzmatch.data import read_structures
from boltzmatch.data.packed import PackedStructures
from boltzmatch.errors import BoltzmatchError


def quadratic_setup():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3, bias=False).double()
    x, y = torch.randn(20, 4, dtype=torch.float64), torch.randn(20, 3, dtype=torch.float64)

    def loss(m):
        return ((m(x) - y) ** 2).mean()

    return model, x, y, loss


@pytest.mark.parametrize("vectorize", [False, True])
def test_landscape_of_an_exact_quadratic_equals_its_analytic_form(vectorize):
    model, x, y, loss = quadratic_setup()
    base = trainable_parameters(model)
    g = torch.Generator().manual_seed(1)
    d1, d2 = filter_normalized_direction(base, g), filter_normalized_direction(base, g)
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-2, 2, 7)
    grid = grid_losses(model, loss, base, d1, d2, xs, ys, progress=False, vectorize=vectorize, chunk=8)
    w0, e1, e2 = base["weight"], d1["weight"], d2["weight"]
    r0, r1, r2 = x @ w0.T - y, x @ e1.T, x @ e2.T  # residual and its change along each direction
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            exact = ((r0 + a * r1 + b * r2) ** 2).mean().item()
            assert grid[i, j] == pytest.approx(exact, rel=1e-10)
    assert torch.equal(model.weight, w0)  # parameters restored


def test_filter_normalisation_gives_each_filter_the_weights_norm():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 2))
    params = trainable_parameters(net)
    params["vector"] = torch.randn(6)  # a 1-D weight vector (like the linear potential's θ): one filter
    skip = norm_parameter_names(net)
    assert skip == {"1.weight", "1.bias"}
    d = filter_normalized_direction(params, torch.Generator().manual_seed(3), skip)
    for name in ("0.weight", "2.weight"):
        assert torch.allclose(d[name].norm(dim=1), params[name].norm(dim=1))
        assert not torch.allclose(d[name], params[name])
    assert torch.allclose(d["vector"].norm(), params["vector"].norm())
    for name in ("0.bias", "2.bias", "1.weight", "1.bias"):  # biases and the LayerNorm
        assert torch.count_nonzero(d[name]) == 0


def test_parameter_direction_moves_one_element():
    net = torch.nn.Linear(3, 2)
    params = trainable_parameters(net)
    d = parameter_direction(params, "weight[1][2]")
    assert d["weight"][1, 2] == 1 and d["weight"].abs().sum() == 1 and d["bias"].abs().sum() == 0
    assert parameter_direction(params, "weight[5]")["weight"].view(-1)[5] == 1
    with pytest.raises(BoltzmatchError, match="no parameter 'wieght'"):
        parameter_direction(params, "wieght[0]")
    with pytest.raises(BoltzmatchError, match="outside weight of shape"):
        parameter_direction(params, "weight[6]")


def test_classifier_losses():
    logits_model = torch.nn.Identity()
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    labels = torch.tensor([0, 1])
    # sample 0: margins all ≥ 1 → 0; sample 1: max(1 + 0 − 0.5) = 0.5 → mean 0.25
    assert classifier_loss("hinge", logits, labels)(logits_model).item() == pytest.approx(0.25)
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert classifier_loss("cross-entropy", logits, labels)(logits_model).item() == pytest.approx(expected.item())


def test_line_landscape_endpoints_are_the_two_runs_losses(tmp_path, ethanol_xtb, linear_runs):
    a, b = linear_runs
    r = landscape(a, ethanol_xtb, out=tmp_path / "line", objective="fisher", temperature=500,
                  directions=f"line:{b}", grid=6, span=0.5, progress=False)
    batch = PackedStructures(read_structures(ethanol_xtb), dtype=torch.float32).full
    loss = energy_model_loss("fisher", batch, temperature=500)
    assert r["loss_at_0"] == pytest.approx(float(loss(boltzmatch.load(a)).detach()), rel=1e-5)
    assert r["loss_at_1"] == pytest.approx(float(loss(boltzmatch.load(b)).detach()), rel=1e-5)
    assert r["loss_at_1"] < r["loss_at_0"]  # the Fisher optimum has the lower Fisher loss
    saved = np.load(tmp_path / "line" / "landscape.npz")
    assert {0.0, 1.0} <= set(saved["x"].tolist()) and saved["loss"].shape == saved["x"].shape
    assert (tmp_path / "line" / "slices.png").exists()


def test_cli_random_landscape_and_one_line_errors(tmp_path, ethanol_xtb, linear_runs):
    a, _ = linear_runs
    ok = subprocess.run([sys.executable, "-m", "boltzmatch", "landscape", str(a), "--data", str(ethanol_xtb),
                         "--objective", "energy", "--grid", "4", "--sharpness-samples", "3", "--out",
                         str(tmp_path / "ls"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "sharpness" in ok.stdout
    saved = json.loads((tmp_path / "ls" / "landscape.json").read_text())
    assert saved["sharpness"] > 0  # the energy fit sits at the minimum of its own loss
    assert np.load(tmp_path / "ls" / "landscape.npz")["loss"].shape == (4, 4)
    for plot in ("contour.png", "surface.png", "slices.png"):
        assert (tmp_path / "ls" / plot).exists()
    bad = subprocess.run([sys.executable, "-m", "boltzmatch", "landscape", str(a), "--data", str(ethanol_xtb),
                          "--directions", "sideways", "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--directions: expected random" in bad.stderr


def test_vectorize_refuses_force_objectives_and_matches_the_loop_for_energy(tmp_path, ethanol_xtb, linear_runs):
    a, _ = linear_runs
    with pytest.raises(BoltzmatchError, match="--vectorize works for the losses without position derivatives"):
        landscape(a, ethanol_xtb, out=tmp_path / "v", objective="fisher", temperature=500, vectorize=True,
                  progress=False)
    looped = landscape(a, ethanol_xtb, out=tmp_path / "loop", objective="energy", grid=3, sharpness_samples=2,
                       progress=False)
    vmapped = landscape(a, ethanol_xtb, out=tmp_path / "vmap", objective="energy", grid=3, sharpness_samples=2,
                        vectorize=True, progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "vmap" / "landscape.npz")["loss"],
                               np.load(tmp_path / "loop" / "landscape.npz")["loss"], rtol=1e-4, atol=1e-7)
    assert vmapped["sharpness"] == looped["sharpness"]
