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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    draw_parity(ax, reference, predicted, label=label, title=title)
    return _save(fig, path)


def parity_errors(reference: np.ndarray, predicted: np.ndarray) -> str:
    """"MAE x, RMSE y" of predicted − reference (the values' unit)."""
    diff = np.asarray(predicted).ravel() - np.asarray(reference).ravel()
    return f"MAE {np.abs(diff).mean():.4g}, RMSE {np.sqrt((diff**2).mean()):.4g}"


def draw_parity(ax, reference: np.ndarray, predicted: np.ndarray, *, label: str, title: str,
                annotate: bool = True):
    """:func:`parity_plot` on a given matplotlib axes (the desktop app draws on its own canvases);
    returns the scatter artist (pickable) or None for a hexbin. ``annotate=False`` leaves out the
    MAE/RMSE text (several models on one axes put theirs in the legend: :func:`parity_errors`)."""
    reference, predicted = np.asarray(reference).ravel(), np.asarray(predicted).ravel()
    artist = None
    if reference.size > 20000:
        ax.hexbin(reference, predicted, gridsize=80, bins="log", cmap="viridis", mincnt=1)
    else:
        artist = ax.scatter(reference, predicted, s=4, alpha=0.5)
    low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
    ax.plot([low, high], [low, high], "k--", lw=1)
    if annotate:
        ax.text(0.04, 0.96, parity_errors(reference, predicted).replace(", ", "\n"), transform=ax.transAxes,
                va="top", fontsize=9)
    ax.set_xlabel(f"reference {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(title)
    return artist


def _save(fig, path: str | Path) -> Path:
    from ..utils.atomic import save_figure

    fig.tight_layout()
    return save_figure(fig, path)


def parity_grid(reference: dict[str, np.ndarray], predicted: dict[str, dict[str, np.ndarray]], path: str | Path
                ) -> Path:
    """One column per model, rows energy (eV) and force components (eV/Å), with MAE in each panel."""
    plt = _pyplot()
    names = list(predicted)
    rows = [k for k in ("energy", "forces") if k in reference]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(3.6 * len(names), 3.4 * len(rows)), dpi=110,
                             squeeze=False)
    units = {"energy": "eV", "forces": "eV/Å"}
    for r, key in enumerate(rows):
        ref = np.asarray(reference[key]).ravel()
        for c, name in enumerate(names):
            ax = axes[r, c]
            pred = np.asarray(predicted[name][key]).ravel()
            if ref.size > 20000:
                ax.hexbin(ref, pred, gridsize=60, bins="log", cmap="viridis", mincnt=1)
            else:
                ax.scatter(ref, pred, s=3, alpha=0.5)
            low, high = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([low, high], [low, high], "k--", lw=0.8)
            ax.text(0.04, 0.96, f"MAE {np.abs(pred - ref).mean():.4g} {units[key]}", transform=ax.transAxes,
                    va="top", fontsize=8)
            ax.set_title(f"{name}: {key}", fontsize=9)
            ax.set_xlabel(f"reference ({units[key]})", fontsize=8)
            ax.set_ylabel(f"predicted ({units[key]})", fontsize=8)
    return _save(fig, path)


def energy_along_trajectory(time: np.ndarray, reference: np.ndarray, predicted: dict[str, np.ndarray],
                            path: str | Path, xlabel: str = "frame") -> Path:
    """Reference and predicted energy (eV) along a held-out trajectory, one panel per model.

    Each model's mean offset to the reference is removed (models trained without energies have
    an arbitrary zero) and printed in the panel's legend.
    """
    plt = _pyplot()
    names = list(predicted)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), dpi=110, squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names, strict=True):
        pred = np.asarray(predicted[name])
        offset = float(np.mean(pred - reference))
        ax.plot(time, reference - reference.mean(), color="black", lw=1.0, label="reference")
        ax.plot(time, pred - offset - reference.mean(), color="tab:red", lw=0.9, alpha=0.8,
                label=f"{name} (offset {offset:+.3f} eV removed)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7, loc="upper right")
    axes[0, 0].set_ylabel("energy − reference mean (eV)")
    return _save(fig, path)


def overlay_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, xlabel: str, ylabel: str,
                 title: str, reference_key: str | None = "reference") -> Path:
    """Line curves on one axis; the reference (if present) in black."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, (x, y) in curves.items():
        if name == reference_key:
            ax.plot(x, y, color="black", lw=1.6, label=name)
        else:
            ax.plot(x, y, lw=1.1, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def distribution_panels(panels: dict[str, dict[str, np.ndarray]], path: str | Path, *, xlabel: str,
                        annotations: dict[str, dict[str, str]] | None = None, bins: int = 60) -> Path:
    """One panel per group (e.g. bond type): histograms of the reference (black) and each model,
    with a legend annotation per model (e.g. its KS statistic)."""
    plt = _pyplot()
    groups = list(panels)
    cols = min(4, len(groups))
    n_rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.8 * cols, 3.0 * n_rows), dpi=110, squeeze=False)
    for ax, group in zip(axes.ravel(), groups, strict=False):
        data = panels[group]
        values = np.concatenate([v for v in data.values() if len(v)])
        edges = np.linspace(np.percentile(values, 0.5), np.percentile(values, 99.5), bins + 1)
        for name, v in data.items():
            note = (annotations or {}).get(group, {}).get(name, "")
            style = dict(color="black", lw=1.6) if name == "reference" else dict(lw=1.0)
            ax.hist(v, bins=edges, density=True, histtype="step", label=f"{name} {note}".strip(), **style)
        ax.set_title(group, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(groups):]:
        ax.axis("off")
    return _save(fig, path)


def survival_plot(times: dict[str, np.ndarray], total: float, path: str | Path,
                  collapsed: dict[str, np.ndarray] | None = None) -> Path:
    """Fraction of replicas still stable against simulated time (ps), one step curve per model (replicas
    that did not collapse are censored at their time with ``collapsed``: see :func:`draw_survival`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    draw_survival(ax, times, total, collapsed)
    return _save(fig, path)


def empirical_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted finite values, their empirical CDF F(x) = rank / n)."""
    x = np.sort(np.asarray(values, dtype=float).ravel())
    x = x[np.isfinite(x)]
    return x, np.arange(1, len(x) + 1) / max(len(x), 1)


def ks_distance_at(samples: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float]:
    """(D, x, F_samples(x), F_reference(x)): the two-sample KS distance and where it is reached."""
    xs, _ = empirical_cdf(samples)
    xr, _ = empirical_cdf(reference)
    grid = np.concatenate([xs, xr])
    fs = np.searchsorted(xs, grid, side="right") / max(len(xs), 1)
    fr = np.searchsorted(xr, grid, side="right") / max(len(xr), 1)
    k = int(np.argmax(np.abs(fs - fr)))
    return float(abs(fs[k] - fr[k])), float(grid[k]), float(fs[k]), float(fr[k])


def ks_panels(panels: dict[str, dict[str, np.ndarray]], path: str | Path, *, units: dict[str, str]) -> Path:
    """One panel per quantity (e.g. potential energy, bond lengths, angles): the reference's empirical CDF
    (black) and each model's, the KS distance D marked as a vertical bar where it is reached."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), dpi=110, squeeze=False)
    for ax, (quantity, data) in zip(axes[0], panels.items(), strict=True):
        reference = data["reference"]
        x, f = empirical_cdf(reference)
        ax.step(x, f, where="post", color="black", lw=1.6, label="reference")
        for k, (name, values) in enumerate((n, v) for n, v in data.items() if n != "reference"):
            colour = f"C{k}"
            x, f = empirical_cdf(values)
            d, at, f_s, f_r = ks_distance_at(values, reference)
            ax.step(x, f, where="post", color=colour, lw=1.0, label=f"{name} (D = {d:.3f})")
            ax.vlines(at, min(f_s, f_r), max(f_s, f_r), colors=colour, lw=2.5, alpha=0.8)
        ax.set_title(quantity, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # eV near −300 gave tick labels printed over each other
        ax.set_xlabel(f"{quantity} ({units.get(quantity, '')})", fontsize=8)
        ax.set_ylabel("cumulative fraction", fontsize=8)
        ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def draw_survival(ax, times: dict[str, np.ndarray], total: float,
                  collapsed: dict[str, np.ndarray] | None = None, title: str = "Survival") -> None:
    """:func:`survival_plot` on a given axes. With ``collapsed`` (per model, a flag per replica) a replica that
    did not collapse (stopped, or the run ended) is censored at its time: it never drops the curve, and the
    curve ends where the last such replica's time does (a stopped run knows nothing after it)."""
    drawn: list[tuple[str, np.ndarray]] = []
    styles = ["-", "--", ":", "-."]
    for name, ttc in times.items():
        ttc = np.asarray(ttc, dtype=float)
        flags = np.ones(len(ttc), dtype=bool) if collapsed is None else np.asarray(collapsed[name], dtype=bool)
        end = total if flags.all() else min(total, float(ttc[~flags].max()))
        grid = np.linspace(0.0, end, 400)
        curve = np.array([1.0 - (flags & (ttc < t)).mean() for t in grid])
        # a curve on top of an earlier one would hide it (the demo's two models that never collapsed)
        same = [other for other, seen in drawn if len(seen) == len(curve) and np.array_equal(seen, curve)]
        label = f"{name} (same as {same[0]})" if same else name
        ax.step(grid, curve, where="post", label=label, ls=styles[len(same) % len(styles)],
                lw=1.5 + len(same))
        drawn.append((name, curve))
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("fraction of replicas stable")
    ax.set_xlim(0.0, total)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8)


def landscape_line(x: np.ndarray, loss: np.ndarray, path: str | Path, *, xlabel: str, ylabel: str,
                   marks: tuple[float, ...] = (0.0,)) -> Path:
    """A 1-D landscape with vertical marks (the trained model at 0; a line's second run at 1)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(x, loss, "o-", ms=3)
    for m in marks:
        ax.axvline(m, color="grey", ls="--", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log" if np.all(loss > 0) and loss.max() / max(loss.min(), 1e-300) > 100 else "linear")
    return _save(fig, path)


def landscape_contour(x: np.ndarray, y: np.ndarray, loss: np.ndarray, path: str | Path, *, labels, title: str
                      ) -> Path:
    """Filled contours of log10(loss) (loss[i, j] at x[i], y[j]); the model sits at (0, 0)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.6), dpi=110)
    draw_landscape_contour(fig, ax, x, y, loss, labels=labels, title=title)
    return _save(fig, path)


def draw_landscape_contour(fig, ax, x: np.ndarray, y: np.ndarray, loss: np.ndarray, *, labels, title: str) -> None:
    """:func:`landscape_contour` on a given figure and axes."""
    z = np.log10(np.clip(loss, 1e-300, None)) if np.all(loss > 0) else loss
    cs = ax.contourf(x, y, z.T, levels=30, cmap="viridis")
    ax.contour(x, y, z.T, levels=15, colors="white", linewidths=0.4)
    ax.plot([0], [0], "r*", ms=10)
    fig.colorbar(cs, ax=ax, label=("log10 " if np.all(loss > 0) else "") + title)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)


def landscape_surface(x: np.ndarray, y: np.ndarray, loss: np.ndarray, path: str | Path, *, labels, title: str
                      ) -> Path:
    """A 3-D surface of the loss (log10 when positive)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(6, 5), dpi=110)
    draw_landscape_surface(fig.add_subplot(projection="3d"), x, y, loss, labels=labels, title=title)
    return _save(fig, path)


def draw_landscape_surface(ax, x: np.ndarray, y: np.ndarray, loss: np.ndarray, *, labels, title: str) -> None:
    """:func:`landscape_surface` on a given 3-D axes (rotatable on a Qt canvas)."""
    gx, gy = np.meshgrid(x, y, indexing="ij")
    z = np.log10(np.clip(loss, 1e-300, None)) if np.all(loss > 0) else loss
    ax.plot_surface(gx, gy, z, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel(labels[0], fontsize=7)
    ax.set_ylabel(labels[1], fontsize=7)
    ax.set_zlabel(("log10 " if np.all(loss > 0) else "") + title, fontsize=7)


def landscape_slices(x: np.ndarray, y: np.ndarray, loss: np.ndarray, path: str | Path, *, labels, ylabel: str
                     ) -> Path:
    """1-D slices through the model: along direction 1 at y = 0 and along direction 2 at x = 0."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=110)
    j0, i0 = int(np.argmin(np.abs(y))), int(np.argmin(np.abs(x)))
    for ax, coords, values, label in ((axes[0], x, loss[:, j0], labels[0]), (axes[1], y, loss[i0, :], labels[1])):
        ax.plot(coords, values, "o-", ms=3)
        ax.axvline(0.0, color="grey", ls="--", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel)
    return _save(fig, path)


def image_grid(images: np.ndarray, path: str | Path, *, shape: tuple[int, int], title: str, columns: int = 10,
               labels: np.ndarray | None = None) -> Path:
    """Vectors (n, h·w) shown as a grid of ``shape`` images, grey scale, one row per ``columns``."""
    plt = _pyplot()
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 0.8 + 0.4), dpi=120, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(images[i]).reshape(shape), cmap="gray_r", vmin=-1, vmax=1)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=6, pad=1)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def density_panels(panels: dict[str, np.ndarray], path: str | Path, *, title: str, bins: int = 60,
                   extent: list[list[float]] | None = None, labels: tuple[str, str] | None = None) -> Path:
    """2-D samples as density heat maps side by side on common axes (the held-out data first); the
    axes span the pooled samples unless ``extent`` [[x0, x1], [y0, y1]] is given (then ticks and
    ``labels`` are shown, as for φ/ψ maps)."""
    plt = _pyplot()
    if extent is None:
        pooled = np.concatenate([p for p in panels.values() if len(p)])
        low, high = np.percentile(pooled, 0.5, axis=0), np.percentile(pooled, 99.5, axis=0)
        pad = 0.1 * (high - low)
        extent = [[low[0] - pad[0], high[0] + pad[0]], [low[1] - pad[1], high[1] + pad[1]]]
        ticks = False
    else:
        ticks = True
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), dpi=120, squeeze=False)
    for ax, (name, points) in zip(axes[0], panels.items()):
        ax.hist2d(points[:, 0], points[:, 1], bins=bins, range=extent, cmap="magma", cmin=1)
        ax.set_title(name, fontsize=9)
        if not ticks:
            ax.set_xticks([])
            ax.set_yticks([])
        elif labels is not None:
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
        ax.set_facecolor("black")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def heatmap_panels(maps: dict[str, np.ndarray], path: str | Path, *, title: str, labels: tuple[str, str]) -> Path:
    """2-D arrays (e.g. probabilities over a grid) side by side on one colour scale."""
    plt = _pyplot()
    high = max(float(np.max(m)) for m in maps.values())
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2), dpi=120, squeeze=False)
    for ax, (name, values) in zip(axes[0], maps.items()):
        image = ax.imshow(np.asarray(values).T, origin="lower", cmap="viridis", vmin=0, vmax=high)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
    fig.colorbar(image, ax=axes[0][-1], shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
