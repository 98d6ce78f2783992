"""Loss landscapes of classifiers (the seed's landscape window): hinge or cross-entropy of a ``jem`` or
``classifier`` run's network on its data set's held-out part, around the trained weights, with the same
directions, grid, sharpness, files and plots as the energy models' (:mod:`boltzmatch.analysis.landscape`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..analysis.landscape import (
    CLASSIFIER_LOSSES,
    check_grid,
    classifier_loss,
    grid_losses,
    landscape_directions,
    sharpness,
    trainable_parameters,
    write_landscape,
)
from ..errors import BoltzmatchError
from .train import load_generative, vectors_of


def classifier_network(run_dir: str | Path) -> torch.nn.Module:
    """The network of a generative run that maps (scaled) inputs to class logits; a one-line error otherwise."""
    run = load_generative(run_dir)
    net = run.family.nets["classifier"] if "classifier" in run.family.nets else None
    if net is None:
        raise BoltzmatchError(f"{run_dir}: a {run.config['model']['name']} run has no classifier; the hinge and "
                              f"cross-entropy landscapes need a jem or classifier run")
    return net


def classifier_landscape(run_dir: str | Path, *, out: str | Path, loss: str = "cross-entropy",
                         directions: str = "random", span: float = 1.0, grid: int = 21, max_samples: int = 500,
                         sharpness_epsilon: float = 0.05, sharpness_samples: int = 10, seed: int = 0,
                         progress: bool = True) -> dict:
    """The ``loss`` (hinge, cross-entropy) landscape of a classifier run on at most ``max_samples`` held-out
    points of its data set; ``directions`` random, ``params:NAME[i],NAME[j]`` or ``line:OTHER_RUN`` (another
    classifier run of the same architecture). Writes what :func:`~boltzmatch.analysis.landscape.landscape`
    writes; returns the JSON content (with the held-out accuracy at the trained weights)."""
    if loss not in CLASSIFIER_LOSSES:
        raise BoltzmatchError(f"unknown classifier loss {loss!r}; expected one of {', '.join(CLASSIFIER_LOSSES)}")
    check_grid(grid, span)
    run = load_generative(run_dir)
    net = classifier_network(run_dir)
    data = vectors_of(run)
    if data.held_out_labels is None:
        raise BoltzmatchError(f"{run_dir}: its data set {data.name} has no labels to classify")
    picks = np.random.default_rng(seed).permutation(len(data.held_out))[:max_samples]
    inputs = run.to_model(data.held_out[np.sort(picks)])
    labels = torch.as_tensor(data.held_out_labels[np.sort(picks)], dtype=torch.long)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    loss_fn = classifier_loss(loss, inputs, labels)
    with torch.no_grad():
        accuracy = float((net(inputs).argmax(1) == labels).float().mean())
    base = trainable_parameters(net)
    generator = torch.Generator().manual_seed(seed)
    d1, d2, xs, ys, axis_labels = landscape_directions(directions, net, run_dir, base, span, grid, generator,
                                                       load_other=classifier_network)
    losses = grid_losses(net, loss_fn, base, d1, d2, xs, ys, progress=progress)
    sharp = sharpness(net, loss_fn, epsilon=sharpness_epsilon, samples=sharpness_samples, seed=seed)
    result = {"run_dir": str(run_dir), "data": data.name, "n_frames": len(picks), "objective": loss,
              "temperature": None, "directions": directions, "span": span, "grid": grid,
              "held_out_accuracy": accuracy, "loss_min": float(np.nanmin(losses)),
              "loss_max": float(np.nanmax(losses)), "labels": [a for a in axis_labels if a is not None], **sharp}
    kind = directions.split(":", 1)[0]
    if kind == "line":
        result["loss_at_0"] = float(losses[np.argmin(np.abs(xs))])
        result["loss_at_1"] = float(losses[np.argmin(np.abs(xs - 1.0))])
    write_landscape(Path(out), result, xs, ys, losses, axis_labels, loss, kind)
    return result
