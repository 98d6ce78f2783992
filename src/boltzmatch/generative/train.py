"""The generative families' training loop, sharing the run-directory contract of :mod:`boltzmatch.training`.

A run directory holds ``config.yaml`` (``kind: generative``, the family and its options under
``model``, the data scaling under ``normalization``, the settings under ``training``),
``model.pt`` (the networks after the last epoch), ``checkpoint.pt`` (networks, optimisers, replay
buffer, RNG states, epoch rows: ``resume=True`` continues exactly), ``metrics.csv`` and
``summary.txt``. Molecular data (a structure file) trains through :func:`boltzmatch.train`:
``ebm`` becomes ``objective='cd'``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from ..training.loop import Step, run_loop, write_summary
from ..utils.atomic import save_torch
from ..utils.device import default_device, resolve_device, tensors_to
from ..utils.table import format_table
from .base import Family
from .datasets import VectorData, load_vectors
from .diffusion import Diffusion
from .ebm import EBM, JEM, Classifier
from .gan import GAN
from .vae import VAE

FAMILIES: dict[str, type[Family]] = {f.name: f for f in (EBM, JEM, Classifier, Diffusion, GAN, VAE)}


@dataclass
class GenerativeSettings:
    data: str
    family: str
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    max_minutes: float | None = None
    options: dict = field(default_factory=dict)
    device: str = "auto"  # as asked (auto: CUDA when present); a resumed run keeps it unless another is given


@dataclass
class GenerativeRun:
    """A trained family with its data scaling: ``to_data``/``from_data`` map between data and model space."""

    family: Family
    shift: torch.Tensor
    scale: float
    config: dict

    def to_model(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(x, dtype=torch.float32, device=self.shift.device) - self.shift) / self.scale

    def to_data(self, z: torch.Tensor) -> np.ndarray:
        return (z * self.scale + self.shift).detach().cpu().numpy()

    def sample(self, n: int, seed: int = 0, labels: np.ndarray | None = None, **options) -> np.ndarray:
        generator = torch.Generator(device=self.shift.device).manual_seed(seed)
        self.family.train_mode(False)
        y = None if labels is None else torch.as_tensor(labels, dtype=torch.long, device=self.shift.device)
        return self.to_data(self.family.sample(n, generator, labels=y, **options))

    def log_likelihood(self, x: np.ndarray, seed: int = 0) -> np.ndarray | None:
        """log p(x) in nats per point, in data units (the scaling's Jacobian −d·log scale included)."""
        self.family.train_mode(False)
        generator = torch.Generator(device=self.shift.device).manual_seed(seed)
        value = self.family.log_likelihood(self.to_model(x), generator)
        if value is None:
            return None
        return value.cpu().numpy() - self.family.dim * np.log(self.scale)

    def predict(self, x: np.ndarray) -> np.ndarray | None:
        """Class probabilities (n, classes) for classifiers, else None."""
        self.family.train_mode(False)
        with torch.no_grad():
            logits = self.family.logits(self.to_model(x))
        return None if logits is None else torch.softmax(logits, -1).cpu().numpy()


def _scaling(kind: str, x: np.ndarray) -> tuple[np.ndarray, float]:
    if kind == "range":
        low, high = x.min(0), x.max(0)
        if np.all(low >= -1.0) and np.all(high <= 1.0):  # digits are scaled to [−1, 1] already
            return np.zeros(x.shape[1], dtype=np.float32), 1.0
        shift = 0.5 * (low + high)
        return shift.astype(np.float32), float(np.abs(x - shift).max())
    shift = x.mean(0)
    return shift.astype(np.float32), float(np.sqrt(((x - shift) ** 2).mean()))


def train_generative(
    family: str, data: str, *, out: str | Path, epochs: int | None = None, batch_size: int | None = None,
    lr: float | None = None, seed: int = 0, options: dict | None = None, max_minutes: float | None = None,
    resume: bool = False, progress: bool = True, device: str = "auto",
) -> dict:
    """Train the generative ``family`` on the vector data set ``data`` (see :data:`~.datasets.DATASETS`)
    into the run directory ``out``; returns the summary. Defaults (optimiser steps, hence epochs;
    batch size; lr) are the family's ``training``; ``options`` are the family's hyperparameters
    (unknown keys: a one-line error). ``device``: auto (CUDA when present), cpu, cuda[:N].
    """
    out = Path(out)
    if resume:
        config = rd.read_run_config(out, "generative")
        settings = GenerativeSettings(**config["training"])
    else:
        if family not in FAMILIES:
            raise BoltzmatchError(f"unknown generative family {family!r}; expected one of {', '.join(FAMILIES)}")
        vectors = load_vectors(data, seed=seed)
        defaults = FAMILIES[family].training_for(vectors.dim)
        batch_size = batch_size or defaults["batch_size"]
        if epochs is None:  # the family's default is a number of optimiser steps, whatever the data size
            epochs = max(1, math.ceil(defaults["steps"] / math.ceil(len(vectors.train) / batch_size)))
        settings = GenerativeSettings(
            data=data, family=family, epochs=epochs,
            batch_size=batch_size, lr=lr or defaults["lr"], seed=seed,
            max_minutes=max_minutes, options=dict(options or {}))
        for name in ("epochs", "batch_size"):
            if getattr(settings, name) < 1:
                raise BoltzmatchError(f"{name} must be a positive integer, got {getattr(settings, name)}")
    settings.device = device if not resume or device != "auto" else settings.device
    with default_device(resolve_device(settings.device)):  # the families make their tensors with plain factory calls
        vectors = load_vectors(settings.data, seed=settings.seed)
        cls = FAMILIES[settings.family]
        torch.manual_seed(settings.seed)
        if resume:
            model = cls(vectors.dim, vectors.n_classes, config["model"]["options"])
            shift = np.asarray(config["normalization"]["shift"], dtype=np.float32)
            scale = float(config["normalization"]["scale"])
        else:
            model = cls(vectors.dim, vectors.n_classes, settings.options)
            shift, scale = _scaling(cls.scaling, vectors.train)
        x_train = torch.as_tensor((vectors.train - shift) / scale, dtype=torch.float32)
        y_train = None if vectors.train_labels is None else torch.as_tensor(vectors.train_labels)
        if not resume:
            model.fit_data(x_train)
            config = {"kind": "generative", "model": {"name": cls.name, "dim": vectors.dim,
                                                       "n_classes": vectors.n_classes, "options": model.options},
                      "normalization": {"shift": shift.tolist(), "scale": scale}, "training": asdict(settings)}
        model.build_optimizers(settings.lr)
        model.plan(settings.epochs * math.ceil(len(x_train) / settings.batch_size))
        if not resume:
            out.mkdir(parents=True, exist_ok=True)
            rd.write_config(out, config)
        step = FamilyStep(model, settings, x_train, y_train, vectors.dequantize / scale)
        state = run_loop(step, out, epochs=settings.epochs, resume=resume, progress=progress,
                         max_minutes=settings.max_minutes)
        save_torch(model.extra_state(), out / "extra.pt")
        last = state["rows"][-1] if state["rows"] else {}
        summary = {"run_dir": str(out), "family": settings.family, "data": settings.data, "epochs": state["epoch"],
                   "n_train": len(x_train), "final_loss": last.get("train_loss", float("nan")),
                   "wall_seconds": last.get("time_s", 0.0)}
        write_summary(out, format_generative_summary(summary))
        return summary


class FamilyStep(Step):
    """An epoch of a generative family: shuffled minibatches of ``x`` (normalised) through the family's
    ``train_step``; ``dequantize`` (normalised units) adds uniform noise to each batch."""

    unit = "epoch"

    def __init__(self, model: Family, settings: GenerativeSettings, x: torch.Tensor, y: torch.Tensor | None,
                 dequantize: float):
        self.model, self.settings, self.x, self.y, self.dequantize = model, settings, x, y, dequantize
        self.generator = torch.Generator(device=torch.get_default_device()).manual_seed(settings.seed)
        self.desc = f"train {settings.family}"

    def run(self, index: int, state: dict) -> dict[str, float]:
        self.model.train_mode(True)
        order = torch.randperm(len(self.x), generator=self.generator)
        totals: dict[str, float] = {}
        n_batches = 0
        for begin in range(0, len(order), self.settings.batch_size):
            batch_index = order[begin:begin + self.settings.batch_size]
            batch = self.x[batch_index]
            if self.dequantize:
                batch = batch + self.dequantize * (torch.rand(batch.shape, generator=self.generator) - 0.5)
            metrics = self.model.train_step(batch, None if self.y is None else self.y[batch_index], self.generator)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
            n_batches += 1
        row = {f"train_{k}": v / n_batches for k, v in totals.items()}
        if not np.isfinite(row.get("train_loss", 0.0)):
            raise BoltzmatchError(f"{self.settings.family} diverged at epoch {index + 1} (loss {row['train_loss']}); "
                                  "lower --lr or change the options")
        return row

    def model_state(self) -> dict:
        return self.model.nets.state_dict()

    def checkpoint(self) -> dict:
        return {"nets": self.model.nets.state_dict(),
                "optimizers": {k: v.state_dict() for k, v in self.model.optimizers.items()},
                "extra": self.model.extra_state(), "generator": self.generator.get_state(),
                "rng": torch.get_rng_state()}

    def restore(self, checkpoint: dict) -> None:
        self.model.nets.load_state_dict(checkpoint["nets"])
        for name, optimizer in self.model.optimizers.items():
            optimizer.load_state_dict(checkpoint["optimizers"][name])
        self.model.load_extra_state(tensors_to(checkpoint["extra"], torch.get_default_device()))
        self.generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["rng"])


def format_generative_summary(summary: dict) -> str:
    rows = [["run directory", summary["run_dir"]], ["family", summary["family"]], ["data", summary["data"]],
            ["epochs", summary["epochs"]], ["training points", summary["n_train"]],
            ["final training loss", f"{summary['final_loss']:.4g}"],
            ["wall time (s)", f"{summary['wall_seconds']:.1f}"]]
    return format_table(rows, title="Generative training summary")


def is_generative_run(run_dir: str | Path) -> bool:
    return rd.read_config(run_dir).get("kind") == "generative"


def load_generative(run_dir: str | Path) -> GenerativeRun:
    """The trained family of a generative run directory, with its data scaling and config."""
    run_dir = Path(run_dir)
    config = rd.read_config(run_dir)
    if config.get("kind") != "generative":
        raise BoltzmatchError(f"{run_dir}: not a generative run (config.yaml has no 'kind: generative'); "
                              "judge energy models, cd and molecular diffusion runs with `boltzmatch compare`")
    spec = config["model"]
    if spec["name"] not in FAMILIES:
        raise BoltzmatchError(f"{run_dir / rd.CONFIG}: unknown family {spec['name']!r}")
    family = FAMILIES[spec["name"]](spec["dim"], spec["n_classes"], spec["options"])
    path = run_dir / rd.MODEL
    if not path.exists():
        raise BoltzmatchError(f"{run_dir}: no {rd.MODEL}; the run has not finished an epoch")
    family.nets.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    extra = run_dir / "extra.pt"
    if not extra.exists():
        extra = run_dir / rd.CHECKPOINT
        state = (torch.load(extra, map_location=torch.get_default_device(), weights_only=False)["extra"]
                 if extra.exists() else {})
    else:
        state = torch.load(extra, map_location=torch.get_default_device(), weights_only=False)
    family.load_extra_state(state)
    norm = config["normalization"]
    return GenerativeRun(family, torch.as_tensor(norm["shift"], dtype=torch.float32), float(norm["scale"]), config)


def vectors_of(run: GenerativeRun) -> VectorData:
    """The data set a run was trained on (its held-out part judges it)."""
    return load_vectors(run.config["training"]["data"], seed=run.config["training"]["seed"])
