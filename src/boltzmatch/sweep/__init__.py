"""Hyperparameter sweeps from W&B sweep YAML, run locally by Optuna (extra ``sweep``)."""

from .config import SweepConfig, load_sweep, parse_sweep
from .report import best_config, format_sweep_summary, write_report
from .runner import agent, run_sweep

__all__ = ["SweepConfig", "agent", "best_config", "format_sweep_summary", "load_sweep", "parse_sweep", "run_sweep",
           "write_report"]
