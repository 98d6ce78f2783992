"""Training: the one run loop, the supervised/score trainer on top of it, fine-tuning, normalisation.

Named ``training`` rather than DESIGN.md's ``train`` so that ``boltzmatch.train`` can be the
function the CLI mirrors (a subpackage of that name would shadow it).

The names below load on first use: the GFlowNet and generative trainers read only :mod:`.loop`, and
importing the energy trainer (data, models, objectives) with it slowed every such process.
"""

from importlib import import_module

_NAMES = {"fit_closed_form": "closed_form", "finetune": "fine_tuning", "SCHEDULES": "trainer",
          "format_train_summary": "trainer", "train": "trainer"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)

# (a submodule named like a name above would shadow it once imported: fine-tuning lives in fine_tuning.py)
