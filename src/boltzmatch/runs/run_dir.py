"""The run directory: the unit passed between commands, and the only module that knows its file names.

``config.yaml`` (model config incl. elements and dtype, normalisation, training settings,
parent run), ``model.pt`` (state dict of the best model by validation loss; for ``cd`` the last
epoch's), ``checkpoint.pt`` (everything needed to resume), ``metrics.csv``, ``split.npz``,
``train.log``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from ..errors import BoltzmatchError
from ..models.base import EnergyModel
from ..models.external import adapter_class, read_model_file
from ..models.prior import attach_prior
from ..models.registry import build_model, stored_config
from ..utils.atomic import atomic_write_text, save_torch

CONFIG = "config.yaml"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
SPLIT = "split.npz"
SUMMARY = "summary.txt"

__all__ = ["CHECKPOINT", "CONFIG", "METRICS", "MODEL", "SPLIT", "SUMMARY", "build_from_config", "energy_zero_known",
           "file_config", "load", "read_config", "read_run_config", "read_metrics", "save_torch", "write_config"]


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config, sort_keys=False))


def read_metrics(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``run_dir/metrics.csv`` as written (strings); [] before the first row or when the
    file cannot be read (a run still writing it, or a trial that never started)."""
    import csv

    path = Path(run_dir) / METRICS
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def file_config(path: str | Path) -> dict:
    """The run configuration of a model file, as ``config.yaml`` of an imported run would hold it."""
    import torch

    path = Path(path).resolve()
    name, module = read_model_file(path)
    if module is not None:  # read once: its dtype is the one fact the config needs
        dtype = next(module.parameters()).dtype
        described = {"dtype": "float64" if dtype == torch.float64 else "float32"}
    else:
        described = adapter_class(name).describe(path)
    model = {"name": name, "file": str(path), **described}
    return {
        "kind": "model", "model": model, "normalization": {"element_energy": {}, "energy_scale": 1.0},
        "training": None, "parent": None, "energy_zero": True, "source": str(path),
    }


def read_config(run_dir: str | Path) -> dict:
    """``config.yaml`` of a run directory; for a MACE/SchNetPack/NequIP model file, the config an
    import of it would write (so every command takes model files where it takes runs)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return file_config(run_dir)
    path = run_dir / CONFIG
    if not path.exists():
        raise BoltzmatchError(f"{run_dir}: not a run directory (no {CONFIG})")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BoltzmatchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for key in ("model", "normalization"):
        if not isinstance(config, dict) or key not in config:
            raise BoltzmatchError(f"{path}: key {key!r} missing")
    if isinstance(config["model"], dict):
        config["model"] = stored_config(config["model"])
    return config


#: what each kind of run is called in errors, and the command that reads it
KINDS = {None: "energy-model", "generative": "generative", "gflownet": "GFlowNet"}


def read_run_config(run_dir: str | Path, kind: str | None) -> dict:
    """``config.yaml`` of a run of ``kind`` (None: an energy model, trained or imported); a one-line
    error naming what the folder holds otherwise."""
    config = read_config(run_dir)
    found = config.get("kind")
    found = None if found in (None, "model") else found
    if found != kind:
        raise BoltzmatchError(f"{run_dir}: holds a {KINDS.get(found, found)} run; this reads {KINDS[kind]} runs "
                              f"(config.yaml kind: {found or 'none'})")
    return config


def energy_zero_known(run_dir: str | Path) -> bool:
    """Whether the model of ``run_dir`` learned its energy zero (it was trained on data with energies).

    Score objectives on positions alone see only ∇U, so such a model's energies carry an arbitrary
    constant. Runs record ``energy_zero``; older ones are judged by their objective.
    """
    config = read_config(run_dir)
    if "energy_zero" in config:
        return bool(config["energy_zero"])
    return (config.get("training") or {}).get("objective") not in ("ism", "ssm", "dsm", "cd")


def build_from_config(config: dict, base_dir: str | Path | None = None) -> EnergyModel:
    """The model of a run configuration; an external model's file is read relative to ``base_dir``."""
    model = build_model(config["model"], base_dir=base_dir)
    norm = config["normalization"]
    if hasattr(model, "set_normalization"):
        model.set_normalization({int(k): float(v) for k, v in norm["element_energy"].items()}, norm["energy_scale"])
    return attach_prior(model, config.get("prior"), "config.yaml: prior")


def load(run_dir: str | Path, *, map_location: str | torch.device = "cpu") -> EnergyModel:
    """The trained model of ``run_dir`` (best validation weights; the last epoch's for cd), in eval mode, on
    the device ``map_location`` (a run trained on a GPU loads on a CPU and the other way round).

    ``run_dir`` may also be a MACE, SchNetPack or NequIP model file: its adapter, as imported.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model = build_from_config(config, base_dir=run_dir if run_dir.is_dir() else None)
    if not run_dir.is_file():
        path = run_dir / MODEL
        if not path.exists():
            raise BoltzmatchError(f"{run_dir}: no {MODEL}; the run has not finished an epoch")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(map_location).eval()
