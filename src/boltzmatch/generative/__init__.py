"""Generative models around the Boltzmann picture: EBMs by contrastive divergence (and JEM),
score-based diffusion, GAN and VAE baselines; one training loop, one metric set (see
:mod:`boltzmatch.generative.compare`).

The names below load on first use: ``boltzmatch.gflownet`` reads only :mod:`.base` (its MLP), and
importing the whole training stack with it cost every ``gflownet train`` process 0.25 s."""

from importlib import import_module

_NAMES = {"DATASETS": "datasets", "TOYS": "datasets", "load_vectors": "datasets", "FAMILIES": "train",
          "is_generative_run": "train", "load_generative": "train", "train_generative": "train"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)
