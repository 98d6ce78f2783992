"""What a simulation reports: per-replica bookkeeping, ``summary.json`` and the printed table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils.table import format_table


@dataclass
class ReplicaBook:
    """Per-replica bookkeeping (numpy arrays over all replicas): collapse time (ps, nan while running),
    reason, and the sums for the mean temperature (K) and, under a barostat, volume (Å³), pressure (GPa) and
    cell lengths a, b, c (Å; (replicas, 3)), all taken at the stability checks."""

    collapse_time: np.ndarray  # ps, nan while running
    reason: list
    temperature_sum: np.ndarray
    temperature_count: np.ndarray
    volume_sum: np.ndarray | None = None
    pressure_sum: np.ndarray | None = None
    lengths_sum: np.ndarray | None = None  # None also in checkpoints from before it was kept

    @classmethod
    def empty(cls, replicas: int, barostat: bool = False) -> ReplicaBook:
        return cls(collapse_time=np.full(replicas, np.nan), reason=[None] * replicas,
                   temperature_sum=np.zeros(replicas), temperature_count=np.zeros(replicas),
                   volume_sum=np.zeros(replicas) if barostat else None,
                   pressure_sum=np.zeros(replicas) if barostat else None,
                   lengths_sum=np.zeros((replicas, 3)) if barostat else None)

    def state_dict(self) -> dict:
        return {"collapse_time": self.collapse_time, "reason": self.reason, "temperature_sum": self.temperature_sum,
                "temperature_count": self.temperature_count, "volume_sum": self.volume_sum,
                "pressure_sum": self.pressure_sum, "lengths_sum": self.lengths_sum}

    def means(self, sums: np.ndarray) -> list[float]:
        """Per replica, the mean of ``sums`` over its checks (nan before the first)."""
        return [float(s / c) if c else float("nan") for s, c in zip(sums, self.temperature_count, strict=True)]


def summarize_simulation(book: ReplicaBook, settings: dict, model_name: str, n_steps: int, steps: int, dt_ps: float,
             complete: bool, wall: float, rate: float, timing: dict) -> dict:
    """``timing`` (this process's loop only): seconds in the loop, in the model's forward and backward,
    in neighbour searches, their count, and the share of the loop spent outside the model."""
    simulated = steps * dt_ps
    collapsed = ~np.isnan(book.collapse_time)
    # a replica that never collapsed counts with the full length (or the time reached so far)
    ttc = np.where(collapsed, book.collapse_time, simulated)
    count = book.temperature_count.sum()
    barostat = {} if book.volume_sum is None else {
        "pressure_GPa": settings["pressure"],
        "mean_volume_A3": float(book.volume_sum.sum() / count) if count else float("nan"),
        "mean_pressure_GPa": float(book.pressure_sum.sum() / count) if count else float("nan"),
        "mean_volume_per_replica_A3": book.means(book.volume_sum),
        **({} if book.lengths_sum is None else {"mean_cell_lengths_A": [
            float(x) for x in (book.lengths_sum.sum(0) / count if count else np.full(3, np.nan))]})}
    return {
        "model": model_name,
        "complete": bool(complete),
        "replicas": int(len(ttc)),
        "temperature": settings["temperature"],
        "integrator": settings["integrator"],
        "criterion": settings.get("criterion", "bond"),
        "timestep_fs": settings["timestep"],
        "time_ps": settings["time"],
        "steps": int(steps),
        "simulated_ps": float(simulated),
        "time_to_collapse_ps": [float(x) for x in ttc],
        "collapsed": [bool(x) for x in collapsed],
        "collapse_reason": list(book.reason),
        "n_collapsed": int(collapsed.sum()),
        "median_time_to_collapse_ps": float(np.median(ttc)),
        "mean_temperature": float(book.temperature_sum.sum() / count) if count else float("nan"),
        "mean_temperature_per_replica": book.means(book.temperature_sum),
        **barostat,
        "replica_steps_per_second": float(rate),
        "wall_seconds": float(wall),
        "timing": {k: float(v) if isinstance(v, float) else v for k, v in timing.items()},
    }


def format_simulation(summary: dict, title: str = "Simulation") -> str:
    """The summary table printed at the end of ``boltzmatch simulate``."""
    reasons: dict[str, int] = {}
    for reason in summary["collapse_reason"]:
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    ttc = np.asarray(summary["time_to_collapse_ps"])
    rows = [
        ["model", summary["model"]],
        ["integrator / timestep (fs)", f"{summary['integrator']} / {summary['timestep_fs']}"],
        ["replicas", summary["replicas"]],
        ["simulated per replica (ps)", summary["simulated_ps"]],
        ["collapsed", f"{summary['n_collapsed']} ({', '.join(f'{k} {v}' for k, v in reasons.items()) or 'none'})"],
        ["collapse criterion", summary.get("criterion", "bond")],
        ["median time to collapse (ps)", summary["median_time_to_collapse_ps"]],
        ["min / max time to collapse (ps)", f"{ttc.min():.3f} / {ttc.max():.3f}"],
        ["mean temperature (K)", summary["mean_temperature"]],
        *([["pressure: set / mean (GPa)", f"{summary['pressure_GPa']:g} / {summary['mean_pressure_GPa']:.3f}"],
           ["mean volume (Å³)", summary["mean_volume_A3"]]] if "mean_volume_A3" in summary else []),
        *([["mean cell lengths a, b, c (Å)", ", ".join(f"{x:.4f}" for x in summary["mean_cell_lengths_A"])]]
          if "mean_cell_lengths_A" in summary else []),
        ["replica-steps per second", summary["replica_steps_per_second"]],
        ["share of a step outside the model", f"{100 * summary['timing']['outside_model_fraction']:.1f}%"
         if "timing" in summary else "–"],
        ["filters", summary.get("timing", {}).get("filters", "exact")
         + ("; model compiled" if summary.get("timing", {}).get("compiled") else "")],
        ["device", summary.get("timing", {}).get("device", "cpu")
         + (f"; {replays} force calls replayed as CUDA graphs" if (replays := summary.get("timing", {}).get(
             "cuda_graph_replays")) else "")],
        ["wall time (s)", summary["wall_seconds"]],
        ["complete", summary["complete"]],
    ]
    return format_table(rows, title=title)
