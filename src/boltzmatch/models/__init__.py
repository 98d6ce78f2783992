"""Energy models: the contract, neighbour lists, descriptors, linear/MLP/SchNet/PaiNN, registry."""

from .base import EnergyModel, energy_and_forces
from .linear import LinearPotential
from .mlp import DescriptorMLP
from .neighbors import Edges, neighbor_list
from .painn import PaiNN
from .registry import MODELS, allowed_keys, build_model, load_config, validate_config
from .schnet import SchNet

__all__ = [
    "MODELS", "DescriptorMLP", "Edges", "EnergyModel", "LinearPotential", "PaiNN", "SchNet", "allowed_keys",
    "build_model", "energy_and_forces", "load_config", "neighbor_list", "validate_config",
]
