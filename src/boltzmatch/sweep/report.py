"""Sweep reports: the trial table, parameter importance and correlations, parallel coordinates,
the metric against each parameter with its regression slope, and validation curves grouped by a
parameter's value (the views W&B users read), as ``report.md`` + PNG; ``best_config`` for rerunning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..utils.atomic import atomic_write_text
from ..utils.table import format_table, markdown_table
from .runner import load_study, metric_rows, summarize_study

MAX_GROUPS = 8  # a parameter with more distinct values is not grouped into curves
FEW_TRIALS = 20  # importance (fANOVA) from fewer completed trials is flagged as unreliable


def _completed(study):
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _save(fig, path: Path) -> None:
    from ..utils.atomic import save_figure

    save_figure(fig, path, dpi=110, bbox_inches="tight")


def correlations(trials, metric_values: np.ndarray) -> dict[str, dict[str, float]]:
    """Pearson and Spearman correlation of each numeric, varying parameter with the metric."""
    from scipy import stats

    out = {}
    names = sorted({k for t in trials for k in t.user_attrs.get("values", {})})
    for name in names:
        values = [t.user_attrs["values"].get(name) for t in trials]
        if not _numeric(values) or len(set(values)) < 2 or len(values) < 3:
            continue
        x = np.asarray(values, dtype=float)
        out[name] = {"pearson": float(stats.pearsonr(x, metric_values)[0]),
                     "spearman": float(stats.spearmanr(x, metric_values)[0])}
    return out


def run_and_report(config: str | Path, out: str | Path, **options) -> str:
    """Run the sweep ``config`` into ``out`` (``options``: those of :func:`~.runner.run_sweep`) and write its
    report; returns ``out``."""
    from .runner import run_sweep

    run_sweep(config, out=out, **options)
    write_report(out)
    return str(out)


def write_report(out: str | Path, storage: str | None = None) -> dict:
    """Write ``report.md`` and plots into the sweep folder ``out``; returns the report's numbers."""
    out = Path(out)
    study, sweep = load_study(out, storage)
    summary = summarize_study(study, sweep, out)
    metric = sweep.metric["name"]
    trials = _completed(study)
    values = np.array([t.value for t in trials], dtype=float)
    result: dict = {"summary": summary, "correlations": {}, "importance": {}, "slopes": {}}
    lines = ["# boltzmatch sweep report", "",
             f"Metric `{metric}` ({sweep.direction}); method {sweep.method}; {summary['trials']} trials: "
             f"{summary['complete']} complete, {summary['pruned']} pruned, {summary['fail']} failed.", ""]
    fixed = {p.name for p in sweep.parameters if p.distribution == "constant"}
    log_scaled = {p.name for p in sweep.parameters if "log" in p.distribution}
    names = sorted({k for t in study.get_trials(deepcopy=False) for k in t.user_attrs.get("values", {})} - fixed)
    header = ["trial", "state", metric] + names
    table = [[str(t.number), t.state.name.lower(), "" if t.value is None else f"{t.value:.5g}"]
             + [str(t.user_attrs.get("values", {}).get(n, "")) for n in names]
             for t in study.get_trials(deepcopy=False)]
    lines += [markdown_table(table, header), ""]
    if len(trials) >= 3:
        result["correlations"] = corr = correlations(trials, values)
        try:
            import optuna

            result["importance"] = {k.removesuffix(".u").removesuffix(".inverse"): float(v) for k, v in
                                    optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ImportError):
            result["importance"] = {}
        if corr:
            _correlation_plot(corr, metric, out)
        lines += ["## Parameters against the metric", "",
                  "| parameter | importance | Pearson r | Spearman ρ | slope (metric per unit) |",
                  "| --- | --- | --- | --- | --- |"]
        numeric = [n for n in names if _numeric([t.user_attrs["values"].get(n) for t in trials])
                   and len({t.user_attrs["values"].get(n) for t in trials}) > 1]
        if numeric:
            result["slopes"] = _slopes_plot(trials, values, numeric, log_scaled, metric, out)
        for name in names:
            c = result["correlations"].get(name, {})
            s = result["slopes"].get(name)
            lines.append(f"| {name} | {result['importance'].get(name, float('nan')):.3f} | "
                         f"{c.get('pearson', float('nan')):.3f} | {c.get('spearman', float('nan')):.3f} | "
                         + (f"{s['slope']:.4g} per {s['per']}" if s else "–") + " |")
        lines.append("")
        varied = [n for n in names if len({str(t.user_attrs["values"].get(n)) for t in trials}) > 1]
        if len(varied) >= 2:
            _parallel_coordinates(trials, values, varied, log_scaled, metric, out)
        if result["importance"]:
            _importance_plot(result["importance"], len(trials), out)
            if len(trials) < FEW_TRIALS:
                warning = (f"The importance rests on {len(trials)} completed trials (fewer than {FEW_TRIALS}): "
                           "read it as a hint, not a ranking.")
                result["importance_warning"] = warning
                lines += [f"**{warning}**", ""]
    discrete = {p.name for p in sweep.parameters if p.distribution in ("categorical", "int_uniform")}
    groupable = [n for n in names if n in discrete
                 and 1 < len({str(t.user_attrs.get("values", {}).get(n)) for t in trials}) <= MAX_GROUPS]
    if groupable:
        _curves_by_parameter(trials, groupable, metric, out)
    for file, caption in (("importance.png", "Parameter importance (fANOVA)"),
                          ("correlation.png", "Correlation of each parameter with the metric"),
                          ("parallel_coordinates.png", "Parallel coordinates"),
                          ("metric_vs_parameters.png", "The metric against each parameter, with the fitted slope"),
                          ("curves_by_parameter.png", "Validation curves grouped by parameter value "
                                                      "(top linear, bottom log scale)")):
        if (out / file).exists():
            lines += [f"## {caption}", "", f"![{caption}]({file})", ""]
    if "best_value" in summary:
        lines += [f"Best: trial {summary['best_trial']}, {metric} = {summary['best_value']:.5g}, "
                  f"{summary['best_values']}", ""]
    lines += ["Browse the study live: `optuna-dashboard sqlite:///" + str((out / "study.db").resolve()) + "`", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    result["report"] = str(out / "report.md")
    return result


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _correlation_plot(corr: dict, metric: str, out: Path) -> None:
    """correlation.png: each parameter's Pearson r with the metric."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(corr)))
    keys = list(corr)
    r = [corr[k]["pearson"] for k in keys]
    ax.barh(keys, r, color=["tab:green" if v > 0 else "tab:red" for v in r])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel(f"Pearson correlation with {metric}")
    _save(fig, out / "correlation.png")


def _slopes_plot(trials, values: np.ndarray, numeric: list[str], log_scaled: set, metric: str, out: Path) -> dict:
    """metric_vs_parameters.png: the metric against each numeric parameter with a fitted line (per decade for
    log-distributed parameters); returns the slopes."""
    plt = _pyplot()
    slopes = {}
    fig, axes = plt.subplots(1, len(numeric), figsize=(3.6 * len(numeric), 3.2), squeeze=False, sharey=True)
    axes[0, 0].set_ylabel(metric)  # once: the panels share the y axis (labels on each overlapped)
    for ax, name in zip(axes[0], numeric, strict=True):
        x = np.array([t.user_attrs["values"][name] for t in trials], dtype=float)
        log = name in log_scaled and x.min() > 0
        fit_x = np.log10(x) if log else x
        slope, intercept = np.polyfit(fit_x, values, 1)
        slopes[name] = {"slope": float(slope), "per": "log10 unit" if log else "unit"}
        ax.scatter(x, values, s=14)
        grid = np.linspace(fit_x.min(), fit_x.max(), 50)
        ax.plot(10**grid if log else grid, slope * grid + intercept, "r-", lw=1)
        ax.set_xscale("log" if log else "linear")
        ax.set_xlabel(name)
        ax.set_title(f"slope {slope:.3g} per {'decade' if log else 'unit'}", fontsize=9)
    _save(fig, out / "metric_vs_parameters.png")
    return slopes


def _parallel_coordinates(trials, values: np.ndarray, names: list[str], log_scaled: set, metric: str,
                          out: Path) -> None:
    """parallel_coordinates.png: each trial a line through its parameters' and metric's values, each axis
    scaled to its own range: log-sampled parameters on a log axis, categorical ones at evenly spaced
    ticks labelled with their values; a colour bar for the metric."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.9 * (len(names) + 1) + 1.2, 3.8))
    columns, scaled, low_high = names + [metric], [], []
    for name in names:
        raw = [t.user_attrs["values"].get(name) for t in trials]
        if _numeric(raw):
            x = np.array(raw, dtype=float)
            log = name in log_scaled and x.min() > 0
            y = np.log10(x) if log else x
            span = np.ptp(y) or 1.0
            scaled.append((y - y.min()) / span)
            low_high.append((f"{x.min():.3g}", f"{x.max():.3g}" + (" (log)" if log else "")))
        else:  # categories at 0 … 1, labelled
            levels = sorted({str(v) for v in raw})
            position = {v: i / max(len(levels) - 1, 1) for i, v in enumerate(levels)}
            scaled.append(np.array([position[str(v)] for v in raw]))
            for level, y in position.items():
                ax.text(len(scaled) - 1 + 0.04, y, level, fontsize=7, va="center")
            low_high.append(("", ""))
    metric_span = np.ptp(values) or 1.0
    scaled.append((values - values.min()) / metric_span)
    low_high.append((f"{values.min():.3g}", f"{values.max():.3g}"))
    data = np.stack(scaled, 1)
    norm = plt.Normalize(values.min(), values.max())
    for row, value in zip(data, values, strict=True):
        ax.plot(range(len(columns)), row, color=plt.cm.viridis(norm(value)), alpha=0.8)
    for k, (low, high) in enumerate(low_high):  # each axis's own range
        ax.axvline(k, color="0.7", lw=0.8, zorder=0)
        ax.text(k, -0.05, low, ha="center", va="top", fontsize=7)
        ax.text(k, 1.05, high, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(columns)), columns, rotation=20)
    ax.set_ylim(-0.14, 1.14)
    ax.set_yticks([])
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=metric)
    ax.set_title(f"parallel coordinates, coloured by {metric}")
    _save(fig, out / "parallel_coordinates.png")


def _importance_plot(importance: dict[str, float], n_trials: int, out: Path) -> None:
    """importance.png: Optuna's fANOVA importance of each parameter, with the number of trials it rests on."""
    plt = _pyplot()
    keys = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.45 * len(keys)))
    ax.barh(keys, [importance[k] for k in keys], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel("importance (fraction of the metric's variance, fANOVA)")
    ax.set_title(f"parameter importance from {n_trials} completed trials"
                 + (" — too few to rely on" if n_trials < FEW_TRIALS else ""), fontsize=9)
    _save(fig, out / "importance.png")


def _curves_by_parameter(trials, groupable: list[str], metric: str, out: Path) -> None:
    """curves_by_parameter.png: validation curves coloured by each discrete parameter's value."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(groupable), figsize=(4 * len(groupable), 6.4), squeeze=False)
    for k, name in enumerate(groupable):
        groups = sorted({str(t.user_attrs["values"].get(name)) for t in trials},
                        key=lambda v: (float(v) if v.replace(".", "", 1).replace("-", "", 1).isdigit() else v))
        cmap = plt.cm.plasma(np.linspace(0, 0.9, len(groups)))
        for t in trials:
            rows = metric_rows(Path(t.user_attrs["run_dir"]))
            epochs = [float(r["epoch"]) for r in rows if r.get(metric) not in (None, "")]
            curve = [float(r[metric]) for r in rows if r.get(metric) not in (None, "")]
            color = cmap[groups.index(str(t.user_attrs["values"].get(name)))]
            for row_axes in (axes[0, k], axes[1, k]):
                row_axes.plot(epochs, curve, color=color, alpha=0.7, lw=1, marker="o", markersize=2.5)
        for g, color in zip(groups, cmap, strict=True):
            axes[0, k].plot([], [], color=color, label=f"{name} = {g}")
        axes[0, k].legend(fontsize=7)
        axes[0, k].set_title(f"{metric} by {name}")
        axes[1, k].set_yscale("log")
        axes[1, k].set_xlabel("epoch")
    _save(fig, out / "curves_by_parameter.png")


def best_config(out: str | Path, storage: str | None = None) -> dict:
    """The best trial's values and command, written to ``best.yaml`` in the sweep folder."""
    from ..errors import BoltzmatchError

    out = Path(out)
    study, sweep = load_study(out, storage)
    if not _completed(study):
        raise BoltzmatchError(f"{out}: no completed trial yet")
    best = study.best_trial
    config = {"metric": sweep.metric["name"], "value": best.value, "trial": best.number,
              "run_dir": best.user_attrs.get("run_dir"), "values": best.user_attrs.get("values", {}),
              "command": best.user_attrs.get("command", [])}
    atomic_write_text(out / "best.yaml", yaml.safe_dump(config, sort_keys=False))
    config["path"] = str(out / "best.yaml")
    return config


def format_sweep_summary(summary: dict) -> str:
    rows = [["sweep folder", summary["sweep_dir"]], ["metric", f"{summary['metric']} ({summary['direction']})"],
            ["trials: complete / pruned / failed", f"{summary['complete']} / {summary['pruned']} / {summary['fail']}"]]
    if "best_value" in summary:
        rows += [["best value", f"{summary['best_value']:.5g} (trial {summary['best_trial']})"],
                 ["best parameters", ", ".join(f"{k}={v}" for k, v in summary["best_values"].items())]]
    return format_table(rows, title="Sweep")

