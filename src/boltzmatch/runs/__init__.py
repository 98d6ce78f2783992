"""Run directories: the unit every command passes on (config.yaml, model.pt, checkpoint.pt,
metrics.csv, summary.txt), the only code that knows their file names; any run or model file loads here."""

from .external import copy_external, export_run, format_import_summary, import_model
from .run_dir import build_from_config, energy_zero_known, file_config, load, read_config, read_metrics, write_config

__all__ = ["build_from_config", "copy_external", "energy_zero_known", "export_run", "file_config",
           "format_import_summary", "import_model", "load", "read_config", "read_metrics", "write_config"]
