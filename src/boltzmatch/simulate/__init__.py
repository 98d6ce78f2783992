"""Batched MD with trained models: integrators, stability checks, an ASE calculator."""

from .calculator import BoltzmatchCalculator
from .integrators import INTEGRATORS, Langevin, MDState, NoseHoover, VelocityVerlet, make_integrator
from .runner import ModelForces, format_simulation, simulate

__all__ = [
    "INTEGRATORS", "BoltzmatchCalculator", "Langevin", "MDState", "ModelForces", "NoseHoover", "VelocityVerlet",
    "format_simulation", "make_integrator", "simulate",
]
