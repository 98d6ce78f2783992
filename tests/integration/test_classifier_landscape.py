"""The seed's classifier landscape (issue 37): hinge and cross-entropy of a digits classifier around its
trained weights, from the CLI; the value at the trained weights is the loss computed directly."""

import json

import pytest
import torch

pytest.importorskip("sklearn")

from boltzmatch.analysis.landscape import classifier_loss  # noqa: E402
from boltzmatch.cli.main import main  # noqa: E402
from boltzmatch.generative.train import load_generative, train_generative, vectors_of  # noqa: E402


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "classifier"
    train_generative("classifier", "digits", out=out, epochs=3, lr=1e-3, options={"hidden": [32]}, progress=False)
    return out


@pytest.mark.parametrize("loss", ["cross-entropy", "hinge"])
def test_classifier_landscape_from_the_cli(digits_classifier, tmp_path, loss, capsys):
    out = tmp_path / loss
    assert main(["landscape", str(digits_classifier), "--objective", loss, "--grid", "5", "--max-frames", "10000",
                 "--out", str(out), "--quiet"]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    result = json.loads((out / "landscape.json").read_text())
    run = load_generative(digits_classifier)
    data = vectors_of(run)
    direct = classifier_loss(loss, run.to_model(data.held_out), torch.as_tensor(data.held_out_labels))
    assert result["loss_at_model"] == pytest.approx(float(direct(run.family.nets["classifier"])), rel=1e-5)
    assert result["loss_min"] <= result["loss_at_model"] <= result["loss_max"]
    assert result["held_out_accuracy"] > 0.5 and (out / "contour.png").exists()


def test_a_run_without_a_classifier_is_one_line(tmp_path, capsys):
    vae = tmp_path / "vae"
    train_generative("vae", "moons", out=vae, epochs=1, progress=False)
    assert main(["landscape", str(vae), "--objective", "hinge", "--out", str(tmp_path / "x")]) == 2
    assert "has no classifier" in capsys.readouterr().err
