"""boltzmatch: make molecular energy models right about the Boltzmann distribution.

The public Python API mirrors the CLI: each ``boltzmatch <command>`` is a thin layer over a
function of the same name here.
"""

from .data import AtomsBatch, generate, read_structures, summarize, write_structures
from .errors import BoltzmatchError

__version__ = "0.1.0"

__all__ = ["AtomsBatch", "BoltzmatchError", "generate", "read_structures", "summarize", "write_structures"]
