"""boltzmatch: make molecular energy models right about the Boltzmann distribution.

The public Python API mirrors the CLI: each ``boltzmatch <command>`` is a thin layer over a
function of the same name here (``generate``, ``train``, ``finetune``, ``evaluate``, ``simulate``,
``load``, ``refine``); ``boltzmatch.analysis.compare.compare`` and ``boltzmatch.workflows.demo`` back ``compare``
and ``demo``.
"""

from . import simulate  # a callable module: boltzmatch.simulate(...) and boltzmatch.simulate.BoltzmatchCalculator
from .analysis.evaluate import evaluate
from .data import AtomsBatch, generate, read_structures, summarize, write_structures
from .errors import BoltzmatchError
from .models import build_model, energy_and_forces
from .runs import load
from .training import finetune, train
from .workflows import refine

__version__ = "0.1.0"

__all__ = [
    "AtomsBatch", "BoltzmatchError", "build_model", "energy_and_forces", "evaluate", "finetune", "generate", "load",
    "read_structures", "refine", "simulate", "summarize", "train", "write_structures",
]
