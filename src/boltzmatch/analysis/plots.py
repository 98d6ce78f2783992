"""Plots written as PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity_plot(reference: np.ndarray, predicted: np.ndarray, path: str | Path, *, label: str, title: str) -> Path:
    """Predicted against reference with the y = x line and MAE/RMSE in the corner."""
    from ..utils.atomic import atomic_path

    plt = _pyplot()
    reference, predicted = np.asarray(reference).ravel(), np.asarray(predicted).ravel()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    if reference.size > 20000:
        ax.hexbin(reference, predicted, gridsize=80, bins="log", cmap="viridis", mincnt=1)
    else:
        ax.scatter(reference, predicted, s=4, alpha=0.5)
    low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
    ax.plot([low, high], [low, high], "k--", lw=1)
    diff = predicted - reference
    ax.text(0.04, 0.96, f"MAE {np.abs(diff).mean():.4g}\nRMSE {np.sqrt((diff**2).mean()):.4g}",
            transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel(f"reference {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
