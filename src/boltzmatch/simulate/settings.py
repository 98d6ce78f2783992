"""The settings of a ``simulate`` run: which there are, their types and their checks (compared on resume)."""

from __future__ import annotations

from ..errors import BoltzmatchError
from .barostat import DEFAULT_BAROSTAT_TAU, DEFAULT_COMPRESSIBILITY, check_barostat_settings
from .rdf_rule import DEFAULT_MAX_RDF_DEVIATION, DEFAULT_RDF_WINDOW_FS
from .stability import AUTO, CRITERIA

SETTINGS_KEYS = ("temperature", "replicas", "time", "timestep", "integrator", "friction", "tau", "interval",
                 "check_interval", "seed", "format", "max_deviation", "max_temperature", "criterion", "persist",
                 "rdf_window", "max_rdf_deviation", "pressure", "barostat_tau", "compressibility", "pressure_coupling")
#: what checkpoints written before a setting existed used
LEGACY_SETTINGS = {"rdf_window": DEFAULT_RDF_WINDOW_FS, "max_rdf_deviation": DEFAULT_MAX_RDF_DEVIATION,
                   "pressure": None, "barostat_tau": DEFAULT_BAROSTAT_TAU, "compressibility": DEFAULT_COMPRESSIBILITY,
                   "pressure_coupling": "isotropic"}
_FLOATS = ("temperature", "time", "timestep", "friction", "tau", "max_deviation", "persist", "rdf_window",
           "max_rdf_deviation", "barostat_tau", "compressibility")
_INTEGERS = ("replicas", "interval", "check_interval", "seed")


def run_settings(given: dict) -> dict:
    """The run's settings (:data:`SETTINGS_KEYS`) as numbers of the right type, checked; ``pressure`` (GPa) stays
    None without a barostat."""
    settings = {key: float(given[key]) if key in _FLOATS else int(given[key]) if key in _INTEGERS else given[key]
                for key in SETTINGS_KEYS}
    settings["max_temperature"] = float(settings["max_temperature"] or 5 * settings["temperature"])
    if settings["pressure"] is not None:
        settings["pressure"] = float(settings["pressure"])
    validate(settings)
    return settings


def validate(settings: dict) -> None:
    """One-line errors for settings no run can use."""
    for key in ("temperature", "time", "timestep"):
        if not settings[key] > 0:
            raise BoltzmatchError(f"--{key} must be positive, got {settings[key]}")
    if settings["criterion"] not in (AUTO, *CRITERIA):
        raise BoltzmatchError(f"--criterion must be one of {', '.join((AUTO, *CRITERIA))}, "
                              f"got {settings['criterion']!r}")
    if not settings["persist"] >= 0:
        raise BoltzmatchError(f"--persist must be ≥ 0 fs, got {settings['persist']}")
    for key in ("rdf_window", "max_rdf_deviation"):
        if not settings[key] > 0:
            raise BoltzmatchError(f"--{key.replace('_', '-')} must be positive, got {settings[key]}")
    for key in ("replicas", "interval", "check_interval"):
        if settings[key] < 1:
            raise BoltzmatchError(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    check_barostat_settings(settings["pressure"], settings["barostat_tau"], settings["compressibility"],
                            settings["pressure_coupling"])
    if settings["pressure"] is not None and settings["integrator"] != "langevin":
        raise BoltzmatchError(f"--pressure needs --integrator langevin (the barostat runs inside its step), "
                              f"got {settings['integrator']!r}")
