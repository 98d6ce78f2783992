"""The functions behind ``boltzmatch generative`` and the app's Generative pane: train any family on
vectors or molecules (and resume either), draw samples to a file with their picture, train and judge.

Each returns its result and the table a front end prints; the front ends parse options and print."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.writers import write_structures
from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from ..training import format_train_summary, train
from ..utils.atomic import atomic_path
from .compare import compare_generative
from .datasets import is_structure_file
from .molecular import sample_molecules, train_molecular_diffusion
from .train import format_generative_summary, load_generative, train_generative, vectors_of


def check_training_numbers(**given) -> None:
    """One-line errors, naming the option, for numbers no run can use (None: the default, not checked):
    a batch size of 0 fell back to the default, a negative temperature or learning rate went unnoticed."""
    for key, value in given.items():
        if value is None:
            continue
        whole = key in ("epochs", "batch_size", "steps", "n")
        if not value > 0 or (whole and int(value) != value):
            kind = "a positive integer" if whole else "positive"
            raise BoltzmatchError(f"--{key.replace('_', '-')} must be {kind}, got {value}")


def train_family(family: str, data: str, *, out: str | Path, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, seed: int = 0, options: dict | None = None,
                 temperature: float | None = None, max_minutes: float | None = None,
                 progress: bool = True, device: str = "auto") -> tuple[dict, str]:
    """Train ``family`` on ``data``: a vector data set (:func:`~.train.train_generative`) or a structure
    file, where ``ebm`` is an energy model trained by contrastive divergence at ``temperature`` (K;
    ``options`` are CD's, plus ``model``) and ``diffusion`` a noise-conditional energy model
    (:func:`~.molecular.train_molecular_diffusion`). Returns the summary and its table."""
    check_training_numbers(epochs=epochs, batch_size=batch_size, lr=lr, temperature=temperature,
                           max_minutes=max_minutes)
    if not is_structure_file(data):
        summary = train_generative(family, data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                   options=options, max_minutes=max_minutes, progress=progress, device=device)
        return summary, format_generative_summary(summary)
    options = dict(options or {})
    if family == "ebm":
        summary = train(data, out=out, objective="cd", temperature=temperature, model=options.pop("model", "schnet"),
                        epochs=epochs or 100, batch_size=batch_size or 32, lr=lr or 1e-3, seed=seed,
                        max_minutes=max_minutes, progress=progress, cd_options=options, device=device)
    elif family == "diffusion":
        summary = train_molecular_diffusion(data, out=out, temperature=temperature, epochs=epochs,
                                            batch_size=batch_size, lr=lr, seed=seed, options=options,
                                            max_minutes=max_minutes, progress=progress, device=device)
    else:
        raise BoltzmatchError(f"{family} works on vectors (toys, digits); for molecules use ebm or diffusion")
    return summary, format_train_summary(summary)


def resume_family(run_dir: str | Path, *, progress: bool = True, device: str = "auto") -> tuple[dict, str]:
    """Continue a killed ``generative train`` run, whichever kind it is; returns the summary and its table."""
    if rd.read_config(run_dir).get("kind") == "generative":
        summary = train_generative(None, None, out=run_dir, resume=True, progress=progress, device=device)
        return summary, format_generative_summary(summary)
    summary = train(None, out=run_dir, resume=True, progress=progress, device=device)  # molecules: energy models
    return summary, format_train_summary(summary)


def sample_to_file(run_dir: str | Path, n: int, *, out: str | Path, seed: int = 0, steps: int | None = None,
                   sampler: str | None = None, label: int | None = None) -> str:
    """Draw ``n`` samples of ``run_dir`` into ``out``: extxyz for a molecular diffusion run, ``.npy`` for
    vectors (with a picture beside it: an image grid, or a 2-D density map beside held-out data).
    Returns the line a front end prints."""
    out = Path(out)
    check_training_numbers(n=n, steps=steps)
    config = rd.read_config(run_dir)
    if config["model"].get("noise_levels"):
        from ..analysis.metrics import valid_structure_fraction
        from ..data import read_structures

        frames = sample_molecules(run_dir, n, seed=seed, steps=steps)
        write_structures(out, frames)
        valid = valid_structure_fraction(frames, read_structures(config["training"]["data"]))
        return (f"wrote {len(frames)} structures to {out}; {100 * valid:.1f} % valid (every pair and bond within the "
                f"training frames' range, ± 0.1 Å)")
    if config.get("kind") != "generative":
        raise BoltzmatchError(f"{run_dir}: not a generative run; sample an energy model with `boltzmatch simulate`")
    if out.suffix != ".npy":
        raise BoltzmatchError(f"{out}: vectors are written as .npy")
    run = load_generative(run_dir)
    labels = None if label is None else np.full(n, label)
    if labels is not None and not run.family.needs_labels:
        raise BoltzmatchError(f"--label: {run.family.name} has no classes (only jem samples per class)")
    if labels is not None and not 0 <= label < run.family.n_classes:
        raise BoltzmatchError(f"--label must be a class of the run, 0 … {run.family.n_classes - 1}, got {label}")
    options = {k: v for k, v in (("sampler", sampler), ("steps", steps)) if v is not None}
    samples = run.sample(n, seed=seed, labels=labels, **options)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, samples.astype(np.float32))
    picture = _picture(run, samples, out.with_suffix(".png"))
    also = f" and {picture}" if picture else ""
    return f"wrote {len(samples)} samples of dimension {samples.shape[1]} to {out}{also}"


def _picture(run, samples: np.ndarray, path: Path) -> Path | None:
    """A sample grid for images, a density map beside held-out data for 2-D toys; None otherwise."""
    from ..analysis import plots

    vectors = vectors_of(run)
    if vectors.image_shape is not None:
        return plots.image_grid(samples[:100], path, shape=vectors.image_shape, title=f"{run.family.name} samples")
    if vectors.dim == 2:
        return plots.density_panels({"held-out data": vectors.held_out, "samples": samples}, path,
                                    title=f"{vectors.name}: {run.family.name}")
    return None


def train_and_judge(family: str, data: str, *, out: str | Path, **options) -> str:
    """Train ``family`` on the vector data set ``data`` into ``out`` (``options``: those of
    :func:`~.train.train_generative`) and judge it into ``out/report``; returns ``out``."""
    train_generative(family, data, out=out, **options)
    compare_generative([out], out=Path(out) / "report")
    return str(out)
