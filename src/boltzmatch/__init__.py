"""boltzmatch: make molecular energy models right about the Boltzmann distribution.

The public Python API mirrors the CLI: each ``boltzmatch <command>`` is a thin layer over a
function of the same name here (``generate``, ``train``, ``finetune``, ``evaluate``, ``simulate``,
``load``, ``refine``); ``boltzmatch.analysis.compare.compare`` and ``boltzmatch.workflows.demo`` back ``compare``
and ``demo``.
"""

import importlib

from .errors import BoltzmatchError

#: the public API, imported on first use: ``import boltzmatch`` for one subsystem (a GFlowNet run, a
#: sweep agent) no longer loads ASE, the models and scipy.stats (≈ 1 s of every command's start)
_LAZY = {
    "simulate": (".simulate", None),  # a callable module: boltzmatch.simulate(...) and .BoltzmatchCalculator
    "evaluate": (".analysis.evaluate", "evaluate"),
    "AtomsBatch": (".data", "AtomsBatch"), "generate": (".data", "generate"),
    "read_structures": (".data", "read_structures"), "summarize": (".data", "summarize"),
    "write_structures": (".data", "write_structures"),
    "build_model": (".models", "build_model"), "energy_and_forces": (".models", "energy_and_forces"),
    "load": (".runs", "load"), "finetune": (".training", "finetune"), "train": (".training", "train"),
    "refine": (".workflows", "refine"),
}


#: subpackages reachable as attributes after a bare ``import boltzmatch`` (``boltzmatch.runs.read_config``)
_SUBPACKAGES = ("analysis", "cli", "data", "generative", "gflownet", "gui", "models", "objectives", "runs",
                "simulate", "sweep", "training", "utils", "workflows")


def __getattr__(name: str):
    if name in _SUBPACKAGES and name not in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'boltzmatch' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "AtomsBatch", "BoltzmatchError", "build_model", "energy_and_forces", "evaluate", "finetune", "generate", "load",
    "read_structures", "refine", "simulate", "summarize", "train", "write_structures",
]
