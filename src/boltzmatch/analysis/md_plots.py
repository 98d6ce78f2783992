"""The picture of one ``simulate`` folder: survival, temperature and potential energy against time, and under a
barostat the volume, pressure and cell lengths (``simulation.png``, written by ``boltzmatch simulate``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..simulate.output import read_thermo
from .plots import _pyplot, _save, draw_survival

#: the file :func:`simulation_plot` writes in the simulate folder
SIMULATION_PLOT = "simulation.png"


def _over_replicas(thermo: dict[str, np.ndarray], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray]:
    """(time ps, mean, min, max) of ``column`` over the replicas still running at each recorded step."""
    times, inverse = np.unique(thermo["time_ps"], return_inverse=True)
    values = np.asarray(thermo[column], dtype=float)
    mean = np.bincount(inverse, weights=values) / np.bincount(inverse)
    low = np.full(len(times), np.inf)
    high = np.full(len(times), -np.inf)
    np.minimum.at(low, inverse, values)
    np.maximum.at(high, inverse, values)
    return times, mean, low, high


def _band(ax, thermo: dict[str, np.ndarray], column: str, label: str, colour: str = "C0") -> None:
    times, mean, low, high = _over_replicas(thermo, column)
    ax.fill_between(times, low, high, color=colour, alpha=0.2, lw=0, label="range over replicas")
    ax.plot(times, mean, color=colour, lw=1.2, label="mean")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel(label)


def simulation_plot(sim_dir: str | Path) -> Path:
    """Write ``sim_dir/simulation.png`` from its ``thermo.csv`` and ``summary.json``; returns its path.

    Panels: the fraction of replicas stable (ps), the temperature (K) with the thermostat's, the potential energy
    (eV), and with a barostat the volume (Å³), the pressure (GPa) with the set one and the mean cell lengths a, b,
    c (Å). Bands are the range over the replicas still running at each step.
    """
    sim_dir = Path(sim_dir)
    summary = json.loads((sim_dir / "summary.json").read_text())
    thermo = read_thermo(sim_dir / "thermo.csv")
    barostat = "volume_A3" in thermo
    plt = _pyplot()
    fig, axes = plt.subplots(2 if barostat else 1, 3, figsize=(13, 6.4 if barostat else 3.4), dpi=100,
                             squeeze=False)
    draw_survival(axes[0, 0], {"replicas": np.asarray(summary["time_to_collapse_ps"])}, summary["simulated_ps"]
                  or 1e-9, {"replicas": np.asarray(summary["collapsed"])},
                  title=f"Survival ({summary['criterion']} criterion)")
    _band(axes[0, 1], thermo, "temperature_K", "temperature (K)")
    axes[0, 1].axhline(summary["temperature"], color="black", lw=0.8, ls="--", label="thermostat")
    axes[0, 1].set_title("Temperature")
    _band(axes[0, 2], thermo, "potential_eV", "potential energy (eV)")
    axes[0, 2].set_title("Potential energy")
    if barostat:
        _band(axes[1, 0], thermo, "volume_A3", "volume (Å³)")
        axes[1, 0].set_title("Volume")
        _band(axes[1, 1], thermo, "pressure_GPa", "pressure (GPa)")
        axes[1, 1].axhline(summary["pressure_GPa"], color="black", lw=0.8, ls="--", label="set")
        axes[1, 1].set_title("Instantaneous pressure")
        ax = axes[1, 2]
        for k, name in enumerate(("a_A", "b_A", "c_A")):
            if name in thermo:  # runs from before the lengths were written have none
                times, mean, _, _ = _over_replicas(thermo, name)
                ax.plot(times, mean, color=f"C{k}", lw=1.2, label=f"{name[0]} (mean)")
        ax.set_xlabel("time (ps)")
        ax.set_ylabel("cell length (Å)")
        ax.set_title("Cell lengths")
    for ax in axes.ravel()[1:]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, sim_dir / SIMULATION_PLOT)
