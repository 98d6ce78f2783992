"""Generative models around the Boltzmann picture: EBMs by contrastive divergence (and JEM),
score-based diffusion, GAN and VAE baselines; one training loop, one metric set (see
:mod:`boltzmatch.generative.compare`)."""

from .datasets import DATASETS, TOYS, load_vectors
from .train import FAMILIES, is_generative_run, load_generative, train_generative

__all__ = ["DATASETS", "FAMILIES", "TOYS", "is_generative_run", "load_generative", "load_vectors",
           "train_generative"]
