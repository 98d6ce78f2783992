"""W&B sweep YAML, key for key, translated to Optuna.

A W&B sweep config names ``method`` (grid, random, bayes), ``metric`` {name, goal, target},
``parameters`` (each with ``value``, ``values`` [+ ``probabilities``], ``min``/``max``, a
``distribution`` and its arguments, or nested ``parameters``), ``run_cap``, ``early_terminate``
(hyperband: ``min_iter`` or ``max_iter`` + ``s``, ``eta``; without ``run_cap`` a random or bayes sweep
runs until its agents stop: ``--count N`` or Ctrl-C, as ``wandb agent``), ``program`` and ``command`` with W&B's
macros (``${envvar:NAME}`` too). Every distribution W&B defines maps to an Optuna one; those Optuna
lacks (normal, beta and their log/q variants, weighted categories) are drawn by inverse CDF from a uniform Optuna
parameter in (0, 1), so random search and TPE both work on them. ``q_*`` values are rounded to
multiples of q after the draw, as W&B does. What cannot carry over (a continuous distribution in
a grid, hyperband's ``strict: true``, a bayes sweep without a metric) is refused with one line naming
the key when the config is read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BoltzmatchError

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform_values",
                 "q_log_uniform_values", "inv_log_uniform_values", "normal", "q_normal", "log_normal",
                 "q_log_normal", "beta", "q_beta", "log_uniform", "q_log_uniform", "inv_log_uniform")
#: W&B's command macros (docs.wandb.ai, "Define sweep configuration": command)
MACROS = ("${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}", "${args_json}",
          "${args_json_file}", "${args_no_boolean_flags}")
ENVVAR = re.compile(r"^\$\{envvar:([A-Za-z_][A-Za-z0-9_]*)\}$")


def is_envvar_macro(token: str) -> bool:
    """``${envvar:NAME}``: W&B's macro for the value of the environment variable NAME."""
    return ENVVAR.match(token) is not None


TOP_KEYS = ("method", "metric", "parameters", "run_cap", "early_terminate", "command", "program", "name",
            "description", "project", "entity")
PARAMETER_KEYS = ("value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma", "q", "a", "b",
                  "parameters")
UNIT = 1e-12  # inverse-CDF draws stay inside (UNIT, 1 − UNIT)


@dataclass
class Parameter:
    """One swept (or fixed) parameter; ``name`` is dotted for nested parameters."""

    name: str
    distribution: str
    spec: dict

    def grid_values(self) -> list:
        if self.distribution == "constant":
            return [self.spec["value"]]
        if self.distribution == "categorical":
            return list(self.spec["values"])
        if self.distribution == "int_uniform":
            return list(range(int(self.spec["min"]), int(self.spec["max"]) + 1))
        raise BoltzmatchError(f"parameters.{self.name}: a grid needs values, value or int_uniform, "
                              f"not distribution {self.distribution}")

    def suggest(self, trial) -> Any:
        """Draw this parameter's value in ``trial`` (an optuna.Trial)."""
        d, s, n = self.distribution, self.spec, self.name
        if d == "constant":
            return s["value"]
        if d == "categorical":
            if "probabilities" in s and not _is_grid(trial):
                u = trial.suggest_float(f"{n}.u", UNIT, 1 - UNIT)
                cumulative = 0.0
                for value, p in zip(s["values"], s["probabilities"], strict=True):
                    cumulative += p
                    if u <= cumulative:
                        return value
                return s["values"][-1]
            return trial.suggest_categorical(n, list(s["values"]))
        if d == "int_uniform":
            return trial.suggest_int(n, int(s["min"]), int(s["max"]))
        if d == "uniform":
            return trial.suggest_float(n, float(s["min"]), float(s["max"]))
        if d == "q_uniform":
            return _quantise(trial.suggest_float(n, float(s["min"]), float(s["max"])), s)
        if d == "log_uniform_values":
            return trial.suggest_float(n, float(s["min"]), float(s["max"]), log=True)
        if d == "q_log_uniform_values":
            return _quantise(trial.suggest_float(n, float(s["min"]), float(s["max"]), log=True), s)
        if d == "inv_log_uniform_values":
            return 1.0 / trial.suggest_float(f"{n}.inverse", 1.0 / float(s["max"]), 1.0 / float(s["min"]), log=True)
        if d in ("log_uniform", "q_log_uniform"):  # W&B's older forms: min and max are natural logarithms
            x = trial.suggest_float(n, math.exp(float(s["min"])), math.exp(float(s["max"])), log=True)
            return _quantise(x, s) if d == "q_log_uniform" else x
        if d == "inv_log_uniform":  # log(1/X) uniform in [min, max] (natural logarithms)
            return 1.0 / trial.suggest_float(f"{n}.inverse", math.exp(float(s["min"])), math.exp(float(s["max"])),
                                             log=True)
        from scipy import stats

        u = trial.suggest_float(f"{n}.u", UNIT, 1 - UNIT)
        if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = float(stats.norm.ppf(u, loc=float(s.get("mu", 0.0)), scale=float(s.get("sigma", 1.0))))
            x = math.exp(x) if "log" in d else x
        else:  # beta, q_beta
            x = float(stats.beta.ppf(u, float(s.get("a", 1.0)), float(s.get("b", 1.0))))
        return _quantise(x, s) if d.startswith("q_") else x


def _quantise(x: float, spec: dict) -> float:
    q = float(spec.get("q", 1.0))
    value = round(x / q) * q
    return int(value) if float(q).is_integer() and float(value).is_integer() else value


def _is_grid(trial) -> bool:
    from optuna.samplers import GridSampler

    sampler = getattr(trial.study, "sampler", None)
    return isinstance(sampler, GridSampler) or getattr(sampler, "grid_queue", False)


@dataclass
class SweepConfig:
    method: str
    metric: dict
    parameters: list[Parameter]
    run_cap: int | None = None
    early_terminate: dict | None = None
    command: list[str] | None = None
    program: str | None = None
    raw: dict = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "maximize" if self.metric.get("goal", "minimize") == "maximize" else "minimize"

    def grid_space(self) -> dict[str, list]:
        return {p.name: p.grid_values() for p in self.parameters}

    def n_grid(self) -> int:
        return math.prod(len(v) for v in self.grid_space().values())


def _infer_distribution(name: str, spec: dict) -> str:
    if "distribution" in spec:
        d = spec["distribution"]
        if d not in DISTRIBUTIONS:
            raise BoltzmatchError(f"parameters.{name}.distribution: unknown {d!r}; expected one of "
                                  f"{', '.join(DISTRIBUTIONS)}")
        return d
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        ints = isinstance(spec["min"], int) and isinstance(spec["max"], int)
        return "int_uniform" if ints else "uniform"
    raise BoltzmatchError(f"parameters.{name}: give value, values, min/max or a distribution")


REQUIRED = {"constant": ("value",), "categorical": ("values",), "int_uniform": ("min", "max"),
            "uniform": ("min", "max"), "q_uniform": ("min", "max"), "log_uniform_values": ("min", "max"),
            "q_log_uniform_values": ("min", "max"), "inv_log_uniform_values": ("min", "max"),
            "log_uniform": ("min", "max"), "q_log_uniform": ("min", "max"), "inv_log_uniform": ("min", "max")}


def _parameters(tree: dict, prefix: str = "") -> list[Parameter]:
    if not isinstance(tree, dict) or not tree:
        raise BoltzmatchError(f"{prefix.rstrip('.') or 'parameters'}: expected a mapping of parameter names")
    out = []
    for key, spec in tree.items():
        name = f"{prefix}{key}"
        if not isinstance(spec, dict):
            raise BoltzmatchError(f"parameters.{name}: expected a mapping such as {{value: ...}} or {{values: [...]}}")
        unknown = [k for k in spec if k not in PARAMETER_KEYS]
        if unknown:
            raise BoltzmatchError(f"parameters.{name}: unknown key {unknown[0]!r}; "
                                  f"allowed: {', '.join(PARAMETER_KEYS)}")
        if "parameters" in spec:
            out += _parameters(spec["parameters"], f"{name}.")
            continue
        d = _infer_distribution(name, spec)
        for needed in REQUIRED.get(d, ()):
            if needed not in spec:
                raise BoltzmatchError(f"parameters.{name}: distribution {d} needs {needed!r}")
        if "min" in spec and "max" in spec and float(spec["min"]) > float(spec["max"]):
            raise BoltzmatchError(f"parameters.{name}: min is above max")
        log_values = "log" in d and d not in ("log_uniform", "q_log_uniform", "inv_log_uniform")
        if log_values and "min" in spec and float(spec["min"]) <= 0:
            raise BoltzmatchError(f"parameters.{name}: {d} needs min > 0")
        if d == "categorical" and (not isinstance(spec["values"], list) or not spec["values"]):
            raise BoltzmatchError(f"parameters.{name}.values: expected a non-empty list")
        if "probabilities" in spec:
            p = spec["probabilities"]
            if not isinstance(p, list) or len(p) != len(spec.get("values", [])) or abs(sum(p) - 1) > 1e-6:
                raise BoltzmatchError(f"parameters.{name}.probabilities: expected one per value, summing to 1")
        out.append(Parameter(name, d, spec))
    return out


def parse_sweep(config: dict, source: str = "sweep config") -> SweepConfig:
    """Validate a W&B sweep config (a mapping); errors name the key, in one line."""
    if not isinstance(config, dict):
        raise BoltzmatchError(f"{source}: expected a mapping with method, metric and parameters")
    for key in config:
        if key not in TOP_KEYS:
            raise BoltzmatchError(f"{source}: unknown key {key!r}; allowed: {', '.join(TOP_KEYS)}")
    method = config.get("method")
    if method not in METHODS:
        raise BoltzmatchError(f"{source}: key 'method' must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "bayes" and not config.get("metric"):  # W&B refuses it too: bayes optimises the metric
        raise BoltzmatchError(f"{source}: key 'metric' (name and goal) is needed for bayes sweeps")
    metric = config.get("metric") or {"name": "val_loss", "goal": "minimize"}
    if not isinstance(metric, dict) or "name" not in metric:
        raise BoltzmatchError(f"{source}: key 'metric' needs a name (e.g. val_loss)")
    if metric.get("goal", "minimize") not in ("minimize", "maximize"):
        raise BoltzmatchError(f"{source}: key 'metric.goal' must be minimize or maximize")
    unknown = [k for k in metric if k not in ("name", "goal", "target")]
    if unknown:
        raise BoltzmatchError(f"{source}: unknown key 'metric.{unknown[0]}'; allowed: name, goal, target")
    parameters = _parameters(config.get("parameters"), "")
    run_cap = config.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        raise BoltzmatchError(f"{source}: key 'run_cap' must be a positive integer")
    early = config.get("early_terminate")
    if early is not None:
        if not isinstance(early, dict) or early.get("type") != "hyperband":
            raise BoltzmatchError(f"{source}: key 'early_terminate.type' must be hyperband")
        bad = [k for k in early if k not in ("type", "min_iter", "max_iter", "s", "eta", "strict")]
        if bad:
            raise BoltzmatchError(f"{source}: unknown key 'early_terminate.{bad[0]}'")
        if "min_iter" not in early and "max_iter" not in early:
            raise BoltzmatchError(f"{source}: key 'early_terminate' needs min_iter, or max_iter and s")
        if early.get("strict", False) not in (True, False):
            raise BoltzmatchError(f"{source}: key 'early_terminate.strict' must be true or false")
        if early.get("strict"):  # refused, never ignored: Optuna's HyperbandPruner has no strict mode
            raise BoltzmatchError(f"{source}: key 'early_terminate.strict': true (W&B's stricter hyperband) is not "
                                  "supported; remove it or set it false")
    command = config.get("command")
    if command is not None and (not isinstance(command, list) or not all(isinstance(c, str) for c in command)):
        raise BoltzmatchError(f"{source}: key 'command' must be a list of strings")
    unknown = [token for token in command or [] if token.startswith("${") and token not in MACROS
               and not is_envvar_macro(token)]
    if unknown:  # refused when the config is read, never when the first trial starts
        raise BoltzmatchError(f"{source}: command: unknown macro {unknown[0]}; expected one of {', '.join(MACROS)}")
    sweep = SweepConfig(method, metric, parameters, run_cap, early, command, config.get("program"), dict(config))
    if method == "grid":
        sweep.grid_space()  # refuses continuous distributions, naming the key
    return sweep


def load_sweep(path: str | Path) -> SweepConfig:
    from ..utils.yaml_file import read_yaml

    return parse_sweep(read_yaml(path), str(path))


def hyperband(early: dict):
    """Optuna's HyperbandPruner from W&B's ``early_terminate`` (epochs as the resource)."""
    from optuna.pruners import HyperbandPruner

    eta = int(early.get("eta", 3))
    if "min_iter" in early:
        return HyperbandPruner(min_resource=int(early["min_iter"]), reduction_factor=eta)
    max_iter, s = int(early["max_iter"]), int(early.get("s", 0))
    return HyperbandPruner(min_resource=max(1, int(max_iter / eta**s)), max_resource=max_iter, reduction_factor=eta)
