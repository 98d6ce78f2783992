"""Structures in and out, batches, splits, and reference data from real calculators."""

from .atoms_batch import AtomsBatch
from .generate import CALCULATORS, GenerateSummary, generate
from .labels import energy_of, forces_of, has_energy, has_forces, make_structure
from .readers import detect_format, read_structures
from .splits import Split, split_indices
from .summary import format_summary, summarize
from .systems import MD17_MOLECULES, build_system
from .writers import FrameWriter, write_structures

__all__ = [
    "AtomsBatch", "CALCULATORS", "FrameWriter", "GenerateSummary", "MD17_MOLECULES", "Split",
    "build_system", "detect_format", "energy_of", "forces_of", "format_summary", "generate",
    "has_energy", "has_forces", "make_structure", "read_structures", "split_indices", "summarize",
    "write_structures",
]
