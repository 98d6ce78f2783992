"""Batched MD with trained models: integrators, stability checks, an ASE calculator.

The module itself is callable: ``boltzmatch.simulate(run_dir, start, out=...)`` is
:func:`~boltzmatch.simulate.runner.simulate` (the API mirrors the CLI command), while
``boltzmatch.simulate.BoltzmatchCalculator`` and the integrators stay reachable as attributes.
"""

import sys
import types

from .calculator import BoltzmatchCalculator
from .integrators import INTEGRATORS, Langevin, MDState, NoseHoover, VelocityVerlet, make_integrator
from .runner import ModelForces, format_simulation, simulate

__all__ = [
    "INTEGRATORS", "BoltzmatchCalculator", "Langevin", "MDState", "ModelForces", "NoseHoover", "VelocityVerlet",
    "format_simulation", "make_integrator", "simulate",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
