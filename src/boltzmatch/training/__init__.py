"""Training: the one run loop, the supervised/score trainer on top of it, fine-tuning, normalisation.

Named ``training`` rather than DESIGN.md's ``train`` so that ``boltzmatch.train`` can be the
function the CLI mirrors (a subpackage of that name would shadow it).
"""

from .closed_form import fit_closed_form
from .finetune import finetune
from .trainer import SCHEDULES, format_train_summary, train

__all__ = ["SCHEDULES", "finetune", "fit_closed_form", "format_train_summary", "train"]
