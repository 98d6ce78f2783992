"""Training: the loop, run directories, normalisation, evaluation.

Named ``training`` rather than DESIGN.md's ``train`` so that ``boltzmatch.train`` can be the
function the CLI mirrors (a subpackage of that name would shadow it).
"""

from .closed_form import fit_closed_form
from .evaluate import evaluate, format_evaluation, predict
from .finetune import finetune
from .refinement import format_refine_summary, refine
from .run_dir import load, read_config
from .trainer import SCHEDULES, format_train_summary, train

__all__ = [
    "SCHEDULES", "evaluate", "finetune", "fit_closed_form", "format_evaluation", "format_train_summary", "load",
    "format_refine_summary", "predict", "read_config", "refine", "train",
]
