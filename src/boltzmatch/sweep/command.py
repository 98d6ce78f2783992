"""A trial's command line: W&B's macros expanded, parameters as W&B passes them to a program of the
user's own (``--learning_rate=0.01``), or as ``boltzmatch train`` flags with model keys moved into the
trial's ``model.yaml``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import BoltzmatchError
from .config import MACROS, SweepConfig, is_envvar_macro


def _model_keys(model: str) -> set[str]:
    from ..models.registry import MODELS, allowed_keys

    if model not in MODELS:
        raise BoltzmatchError(f"parameters.model: unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return set(allowed_keys(model)) - {"name", "elements"}


def wandb_arguments(values: dict[str, Any], booleans: bool = True) -> list[str]:
    """W&B's ``${args}`` for a program of the user's own: ``--name=value`` with the parameter names as
    written (``--learning_rate=0.01``); ``booleans=False`` is ``${args_no_boolean_flags}`` (``--flag`` for
    true, nothing for false)."""
    out = []
    for key, value in values.items():
        if isinstance(value, bool) and not booleans:
            if value:
                out.append(f"--{key}")
        else:
            out.append(f"--{key}={value}")
    return out


def trial_arguments(values: dict[str, Any], trial_dir: Path) -> list[str]:
    """CLI arguments for one trial: model keys go to ``trial_dir/model.yaml`` (``--config``), the rest
    become ``--flag value`` (W&B's ``_`` names become ``-``); ``data`` is positional, not here."""
    values = {k.removeprefix("model."): v for k, v in values.items() if k != "data"}
    model = values.get("model", "schnet")
    model_keys = _model_keys(model)
    config = {k: v for k, v in values.items() if k in model_keys}
    args: list[str] = []
    if config:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "model.yaml").write_text(yaml.safe_dump({"name": model, **config}))
        args += ["--config", str(trial_dir / "model.yaml")]
    for key, value in values.items():
        if key in model_keys:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return args


def trial_command(sweep: SweepConfig, values: dict[str, Any], trial_dir: Path) -> list[str]:
    """The trial's command line: the config's ``command`` with W&B's macros expanded, or
    ``boltzmatch train DATA ARGS``; ``boltzmatch`` runs as ``python -m boltzmatch`` of this Python."""
    template = sweep.command
    if template is None and sweep.program:  # W&B's default command
        template = ["${env}", "${interpreter}", "${program}", "${args}"]
    if template is None:
        if "data" not in values:
            raise BoltzmatchError("parameters.data: the default command (boltzmatch train) needs data: {value: FILE}")
        template = ["boltzmatch", "train", str(values["data"]), "${args}"]
    runs_boltzmatch = "boltzmatch" in template and any(t in template for t in ("train", "finetune"))
    flat = {k.replace("model.", ""): v for k, v in values.items()}
    if runs_boltzmatch:  # model keys to trial_dir/model.yaml, the rest as boltzmatch's --flags
        args = trial_arguments(values, trial_dir) + ["--out", str(trial_dir), "--quiet"]
    else:  # a program of the user's own gets W&B's form, every parameter as named, nothing moved to a file
        args = wandb_arguments(flat)
    command: list[str] = []
    for token in template:
        if token == "${env}":
            command.append("/usr/bin/env")
        elif token == "${interpreter}":
            command.append(sys.executable)
        elif token == "${program}":
            if not sweep.program:
                raise BoltzmatchError("command: ${program} needs the key 'program'")
            command.append(sweep.program)
        elif token == "${args}":
            command += args
        elif token == "${args_no_hyphens}":
            command += [f"{k}={v}" for k, v in flat.items()]
        elif token == "${args_json}":
            command.append(json.dumps(flat))
        elif token == "${args_no_boolean_flags}":
            command += wandb_arguments(flat, booleans=False) if not runs_boltzmatch else args
        elif token == "${args_json_file}":
            trial_dir.mkdir(parents=True, exist_ok=True)
            (trial_dir / "args.json").write_text(json.dumps(flat))
            command.append(str(trial_dir / "args.json"))
        elif token == "boltzmatch":
            command += [sys.executable, "-m", "boltzmatch"]
        elif is_envvar_macro(token):
            name = token[len("${envvar:"):-1]
            if name not in os.environ:
                raise BoltzmatchError(f"command: {token}: the environment variable {name} is not set")
            command.append(os.environ[name])
        elif token.startswith("${"):
            raise BoltzmatchError(f"command: unknown macro {token}; expected one of {', '.join(MACROS)}")
        else:
            command.append(token)
    if not command or command == ["/usr/bin/env"]:
        raise BoltzmatchError("command: nothing to run")
    return command
