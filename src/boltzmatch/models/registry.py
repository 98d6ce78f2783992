"""Build models from a config dict or YAML file; unknown keys get a one-line error.

A config names the model and its constructor arguments, for example::

    name: schnet          # schnet | painn | mlp | linear | mace | schnetpack | nequip
    cutoff: 5.0           # Å
    n_interactions: 3
    n_features: 64
    n_rbf: 20
    dtype: float32        # or float64

``elements`` (atomic numbers) is filled in from the training data when not given.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from ..errors import BoltzmatchError
from .base import EnergyModel
from .external.mace import MACEModel
from .external.nequip import NequIPModel
from .external.schnetpack import SchNetPackModel
from .linear import LinearPotential
from .mlp import DescriptorMLP
from .painn import PaiNN
from .schnet import SchNet

MODELS: dict[str, type[EnergyModel]] = {
    "schnet": SchNet,
    "painn": PaiNN,
    "mlp": DescriptorMLP,
    "linear": LinearPotential,
    "mace": MACEModel,
    "schnetpack": SchNetPackModel,
    "nequip": NequIPModel,
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
COMMON_KEYS = ("name", "dtype")
#: constructor arguments added after runs were stored: the value a stored config without the key was trained with
#: (training records the value of every new run's config: training/prepare.py)
BEFORE_THE_KEY = {"painn": {"radial_basis": "bessel"}}


def allowed_keys(name: str) -> list[str]:
    """Config keys accepted for model ``name``."""
    params = inspect.signature(MODELS[name].__init__).parameters
    return list(COMMON_KEYS) + [p for p in params if p != "self"]


def validate_config(config: dict, source: str = "model config") -> dict:
    """Check names and keys; returns a normalised copy."""
    if not isinstance(config, dict):
        raise BoltzmatchError(f"{source}: expected a mapping of keys to values")
    name = config.get("name")
    if name not in MODELS:
        raise BoltzmatchError(f"{source}: key 'name' must be one of {', '.join(MODELS)}, got {name!r}")
    allowed = allowed_keys(name)
    for key in config:
        if key not in allowed:
            raise BoltzmatchError(f"{source}: unknown key {key!r} for {name}; allowed keys: {', '.join(allowed)}")
    params = inspect.signature(MODELS[name].__init__).parameters
    for key, value in config.items():
        if key in COMMON_KEYS or value is None:
            continue
        problem = _type_problem(params[key].default, value)
        if problem:
            raise BoltzmatchError(f"{source}: key {key!r} must be {problem}, got {value!r}")
    dtype = config.get("dtype", "float32")
    if dtype not in DTYPES:
        raise BoltzmatchError(f"{source}: key 'dtype' must be float32 or float64, got {dtype!r}")
    out = dict(config)
    out["dtype"] = dtype
    if "hidden" in out:
        out["hidden"] = list(out["hidden"])
    return out


def _type_problem(default, value) -> str | None:
    """What ``value`` should be, judged by the constructor default's type (None: fine)."""
    number = (int, float)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if isinstance(default, float):
        return None if isinstance(value, number) and not isinstance(value, bool) else "a number"
    if isinstance(default, (tuple, list)):
        ok = isinstance(value, (tuple, list)) and all(isinstance(v, number) and not isinstance(v, bool) for v in value)
        return None if ok else "a list of numbers"
    return None


def stored_config(config: dict) -> dict:
    """A model config as a run directory stored it, with the values of the :data:`BEFORE_THE_KEY` keys it predates
    (a PaiNN trained before ``radial_basis`` existed used Bessel functions)."""
    return {**BEFORE_THE_KEY.get(config.get("name"), {}), **config}


def load_config(path: str | Path) -> dict:
    """Read a model config YAML file (validated)."""
    from ..utils.yaml_file import read_yaml

    config = read_yaml(path)
    if isinstance(config, dict) and "model" in config and isinstance(config["model"], dict):
        config = config["model"]
    return validate_config(config or {}, str(path))


def build_model(config: dict, *, base_dir: str | Path | None = None) -> EnergyModel:
    """Instantiate a model from a validated-or-not config dict.

    An external model's ``file`` (MACE, SchNetPack, NequIP) is read relative to ``base_dir``
    (the run directory that holds it) unless absolute.
    """
    config = validate_config(config)
    kwargs = {k: v for k, v in config.items() if k not in COMMON_KEYS}
    if kwargs.get("file") and base_dir is not None and not Path(kwargs["file"]).is_absolute():
        kwargs["file"] = str(Path(base_dir) / kwargs["file"])
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    cls = MODELS[config["name"]]
    needs_elements = "elements" in inspect.signature(cls.__init__).parameters
    if needs_elements and cls in (LinearPotential, DescriptorMLP) and not kwargs.get("elements"):
        raise BoltzmatchError(f"model config: {config['name']} needs 'elements' (atomic numbers)")
    try:
        model = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BoltzmatchError(f"model config: invalid value for {config['name']}: {exc}") from None
    return model.to(DTYPES[config["dtype"]])
