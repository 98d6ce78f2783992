"""``compare``: several models judged side by side on the same held-out frames and the same MD seeds.

For every model: energy and force errors on the reference frames; with ``simulate=True`` also
batched MD from the same starting frames and seed, then time to collapse, h(r) MAE, KS statistics
of bond lengths, bond angles and potential energy, and the MMD of interatomic-distance vectors,
all against the reference frames. The potential-energy KS test compares the model's own energy
on its samples with the model's energy on the reference frames: calculator-free and blind to the
arbitrary zero of models trained without energies.

Writes ``report.md`` (one table, a column per model), ``compare.json`` and PNG plots.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ..data import read_structures
from ..data.geometry import bond_angles, bond_lengths, find_bonds, pair_distances, ramachandran
from ..data.labels import stress_of
from ..data.packed import PackedStructures
from ..errors import BoltzmatchError
from ..models.base import model_dtype
from ..runs.run_dir import energy_zero_known, load
from ..simulate.output import read_samples
from ..units import GPA_PER_EV_A3
from ..utils.atomic import atomic_write_text
from ..utils.table import format_table, markdown_table
from .evaluate import predict_frames, stress_errors, unfixed_energy_zero
from .metrics import (
    distance_histogram,
    histogram2d_jsd,
    histogram_mae,
    ks_test,
    mmd,
    with_floor,
    without_element_offsets,
)

ROWS = [  # (key, label) in report order
    ("energy_mae_meV", "energy MAE (meV)"),
    ("energy_zero_unfixed", "energy zero not fixed by training for"),
    ("energy_mae_centered_meV", "energy MAE, per-element offsets removed (meV)"),
    ("force_mae_meV_A", "force MAE (meV/Å)"),
    ("force_rmse_meV_A", "force RMSE (meV/Å)"),
    ("stress_mae_GPa", "stress MAE (GPa)"),
    ("median_time_to_collapse_ps", "median time to collapse (ps)"),
    ("collapsed_fraction", "collapsed replicas"),
    ("mean_temperature", "mean MD temperature (K)"),
    ("n_sample_frames", "MD frames judged (before collapses)"),
    ("hr_mae", "h(r) MAE (∫ abs Δh dr)"),
    ("bond_ks", "bond-length KS (mean over bonds)"),
    ("angle_ks", "angle KS (mean over angles)"),
    ("energy_ks", "potential-energy KS"),
    ("energy_ks_pvalue", "potential-energy KS p-value"),
    ("mmd", "MMD² of distance vectors"),
    ("ramachandran_jsd", "φ/ψ Jensen–Shannon (36×36 bins)"),
    ("ramachandran_jsd_floor", "φ/ψ JSD floor: reference halves, same n"),
    ("sharpness", "sharpness (fisher loss, ε = 0.05)"),
]


def _model_energy(run_dir: str | Path, frames: Sequence[Atoms]) -> np.ndarray:
    """The model's energies (eV) on unlabelled frames."""
    return predict_frames(run_dir, frames)[0]


def sample_metrics(samples: list[Atoms], reference: list[Atoms], *, r_max: float = 6.0, max_frames: int = 2000,
                   seed: int = 0) -> dict:
    """h(r) MAE, mean KS statistic over bonds and over angles, MMD² of distance vectors, and the
    per-bond-type data for plots. ``samples`` and ``reference`` are frames of one molecule. For
    alanine dipeptide also the φ/ψ Jensen–Shannon divergence and its floor (two disjoint halves of
    the reference, the same number of frames as the samples' value uses).

    h(r) counts every frame (cheap, and the subsample's noise was as large as the differences between
    models it judged); the other metrics use at most ``max_frames`` frames drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    _, h = distance_histogram(samples, r_max=r_max)
    if len(samples) > max_frames:
        samples = [samples[i] for i in sorted(rng.choice(len(samples), max_frames, replace=False))]
    bonds = find_bonds(reference[0])
    ref_d, smp_d = pair_distances(reference), pair_distances(samples)
    r, h_ref = distance_histogram(reference, r_max=r_max, distances=ref_d)
    ref_b, smp_b = bond_lengths(reference, bonds), bond_lengths(samples, bonds)
    ref_a, smp_a = bond_angles(reference, bonds), bond_angles(samples, bonds)
    bond_ks = [ks_test(smp_b[:, k], ref_b[:, k])[0] for k in range(ref_b.shape[1])]
    angle_ks = [ks_test(smp_a[:, k], ref_a[:, k])[0] for k in range(ref_a.shape[1])]
    labels = bonds.labels(reference[0].numbers)
    by_type: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label in sorted(set(labels)):
        cols = [k for k, lab in enumerate(labels) if lab == label]
        by_type[label] = (smp_b[:, cols].ravel(), ref_b[:, cols].ravel())
    extra = {}
    angles_ref, angles = ramachandran(reference), ramachandran(samples)
    if angles_ref is not None and angles is not None:
        extra["ramachandran_jsd"], extra["ramachandran_jsd_floor"], _ = with_floor(
            histogram2d_jsd, angles, angles_ref, seed=seed)
    return {
        **extra,
        "hr_mae": histogram_mae(r, h, h_ref),
        "bond_ks": float(np.nanmean(bond_ks)) if bond_ks else float("nan"),
        "angle_ks": float(np.nanmean(angle_ks)) if angle_ks else float("nan"),
        "mmd": mmd(smp_d, ref_d, max_samples=600, seed=seed),
        "bond_ks_by_type": {lab: ks_test(*by_type[lab])[0] for lab in by_type},
        "_r": r, "_h": h, "_h_ref": h_ref, "_bonds_by_type": by_type,
        "_bonds": (smp_b.ravel(), ref_b.ravel()), "_angles": (smp_a.ravel(), ref_a.ravel()),
    }


def compare(
    run_dirs: Sequence[str | Path],
    test: str | Path | None = None,
    *,
    out: str | Path,
    names: Sequence[str] | None = None,
    simulate: bool = False,
    start: str | Path | None = None,
    temperature: float | None = None,
    replicas: int = 16,
    time: float = 20.0,  # noqa: A002
    timestep: float = 0.5,
    integrator: str = "langevin",
    interval: int = 20,
    seed: int = 0,
    landscape: bool = False,
    landscape_grid: int = 11,
    progress: bool = True,
    data_options: dict | None = None,
    parity: bool = False,
    reference: str | Path | None = None,
    device: str = "auto",
    cuda_graphs: bool = False,
) -> dict:
    """Judge the models in ``run_dirs`` against the labelled ``test`` frames (a held-out reference
    trajectory the models never saw); writes ``out``. ``reference`` is the old name of ``test`` (deprecated).

    ``temperature`` (K) defaults to the reference frames' recorded temperature, else 500.
    ``time`` is ps per replica and ``timestep`` fs. ``landscape=True`` adds each model's Fisher-loss
    landscape (random filter-normalised directions, ``landscape_grid`` points per axis, at most
    100 reference frames) and its sharpness. Returns {model name: metrics} (energies in meV,
    forces in meV/Å, times in ps) plus ``report`` (the path of report.md); with ``parity``, also each
    model's per-frame ``energy_predicted`` and ``energy_reference`` (eV) under ``parity`` (the app's
    parity plot, whose points open their frame). ``device``: where the simulations run (auto: CUDA when present);
    ``cuda_graphs``: their force calls replayed as CUDA graphs (:class:`~boltzmatch.simulate.ModelForces`).
    """
    if reference is not None:
        warnings.warn("compare(reference=...) is deprecated and goes in the next release; use test=...",
                      DeprecationWarning, stacklevel=2)
        test = reference
    if test is None:
        raise BoltzmatchError("compare needs labelled test frames (--test)")
    if not run_dirs:
        raise BoltzmatchError("compare needs at least one run directory")
    names = list(names) if names else _default_names(run_dirs)
    if len(names) != len(run_dirs) or len(set(names)) != len(names):
        raise BoltzmatchError(f"--names: expected {len(run_dirs)} distinct names, got {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = read_structures(test, **(data_options or {}))
    packed = PackedStructures(frames, dtype=torch.float64)
    full = packed.full
    if full.energy is None and full.forces is None:
        raise BoltzmatchError(f"{test}: compare needs reference energies or forces")
    if temperature is None:
        recorded = [a.info.get("temperature") for a in frames if a.info.get("temperature") is not None]
        temperature = float(np.mean(recorded)) if recorded else 500.0

    results, predictions = _errors(run_dirs, names, frames, packed, test)
    _error_plots(frames, packed, predictions, out)

    criterion = None
    if simulate:
        criterion = _simulate_and_judge(run_dirs, names, frames, results, out, start=start, temperature=temperature,
                            replicas=replicas, time=time, timestep=timestep, integrator=integrator,
                            interval=interval, seed=seed, progress=progress, data_options=data_options,
                            device=device, cuda_graphs=cuda_graphs)

    if landscape:
        from .landscape import landscape as make_landscape

        objective = "fisher" if full.forces is not None else "energy"
        for name, run_dir in zip(names, run_dirs, strict=True):
            r = make_landscape(run_dir, test, out=out / "landscapes" / name, objective=objective,
                               temperature=temperature, grid=landscape_grid, max_frames=100, seed=seed,
                               progress=progress, data_options=data_options)
            results[name]["sharpness"] = r["sharpness"]

    settings = {"test": str(test), "n_test_frames": len(frames), "temperature": temperature,
                "simulate": simulate, "replicas": replicas if simulate else None, "time_ps": time if simulate else None,
                "timestep_fs": timestep if simulate else None, "integrator": integrator if simulate else None,
                "criterion": criterion, "seed": seed}
    report = write_report(results, settings, out)
    atomic_write_text(out / "compare.json", json.dumps({"settings": settings, "models": results}, indent=2))
    result = {"models": results, "settings": settings, "report": str(report)}
    if parity and full.energy is not None:
        result["parity"] = {name: {"energy_predicted": [float(e) for e in predictions[name]["energy"]],
                                   "energy_reference": [float(e) for e in full.energy.double().numpy()]}
                            for name in names}
    return result


def _errors(run_dirs, names, frames, packed: PackedStructures, test) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each model's energy MAE (meV; without per-element offsets for a model without an energy zero; the
    compositions whose zero its training left open, :func:`~.evaluate.unfixed_energy_zero`) and force MAE/RMSE
    (meV/Å) on the reference frames (the file ``test``), and its predictions (eV, eV/Å) for the plots."""
    full = packed.full
    results: dict[str, dict] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    for name, run_dir in zip(names, run_dirs, strict=True):
        energy, forces = predict_frames(run_dir, frames)
        entry: dict = {"run_dir": str(run_dir), "energy_zero": energy_zero_known(run_dir)}
        if full.energy is not None:
            diff = energy - full.energy.numpy()
            if entry["energy_zero"]:
                entry["energy_mae_meV"] = 1000 * float(np.abs(diff).mean())
                if unfixed := unfixed_energy_zero(run_dir, frames, test):
                    entry["energy_zero_unfixed"] = unfixed
            shape = without_element_offsets(diff, packed.host_element_counts)
            if not entry["energy_zero"]:  # trained without energies: the zero is arbitrary, shown without it
                energy = energy - (diff - shape)
            entry["energy_mae_centered_meV"] = 1000 * float(np.abs(shape).mean())
        predictions[name] = {"energy": energy, "forces": forces}
        if full.forces is not None:
            diff = forces - full.forces.numpy()
            entry["force_mae_meV_A"] = 1000 * float(np.abs(diff).mean())
            entry["force_rmse_meV_A"] = 1000 * float(np.sqrt((diff**2).mean()))
        if any(a.pbc.all() and stress_of(a) is not None for a in frames):  # crystals with stress labels
            model = load(run_dir)
            entry["stress_mae_GPa"] = GPA_PER_EV_A3 * stress_errors(model, frames, model_dtype(model),
                                                                     torch.device("cpu"))[0]
        results[name] = entry
    return results, predictions


def _error_plots(frames, packed: PackedStructures, predictions: dict[str, dict], out: Path) -> None:
    """parity.png, and energy_trajectory.png along the reference's time (ps) or frame index."""
    from . import plots

    full = packed.full
    reference_arrays = {}
    if full.energy is not None:
        reference_arrays["energy"] = full.energy.numpy()
    if full.forces is not None:
        reference_arrays["forces"] = full.forces.numpy()
    plots.parity_grid(reference_arrays, predictions, out / "parity.png")
    if full.energy is not None:
        times = [a.info.get("time_ps") for a in frames]
        if all(t is not None for t in times):
            x, xlabel = np.asarray(times, dtype=float), "time (ps)"
        else:
            x, xlabel = np.arange(len(frames)), "frame"
        plots.energy_along_trajectory(x, full.energy.numpy(), {n: p["energy"] for n, p in predictions.items()},
                                      out / "energy_trajectory.png", xlabel=xlabel)


def _default_names(run_dirs: Sequence[str | Path]) -> list[str]:
    names = [Path(r).name or str(r) for r in run_dirs]
    if len(set(names)) == len(names):
        return names
    return [f"{n}-{i}" for i, n in enumerate(names)]


def _simulate_and_judge(run_dirs, names, frames, results, out, *, start, temperature, replicas, time, timestep,
                        integrator, interval, seed, progress, data_options, device="auto",
                        cuda_graphs=False) -> str:
    """MD with every model, judged against ``frames``; the metrics go into ``results``, the plots into ``out``.
    Returns the collapse criterion the simulations used (``auto``'s choice)."""
    from ..data.geometry import composition_key, group_by_composition
    from ..simulate import simulate as run_md
    from . import plots

    start_frames = read_structures(start, **(data_options or {})) if start is not None else frames
    key = composition_key(frames[0])
    reference_mol = group_by_composition(frames)[key]
    survival, hr_curves, bond_panels, bond_notes, ks_cdfs, collapsed = {}, {}, {}, {}, {}, {}
    for name, run_dir in zip(names, run_dirs, strict=True):
        summary = run_md(run_dir, start_frames, out=out / "simulations" / name, temperature=temperature,
                         replicas=replicas, time=time, timestep=timestep, integrator=integrator, interval=interval,
                         seed=seed, reference=frames, progress=progress, device=device,
                         cuda_graphs=cuda_graphs)
        entry = results[name]
        entry["median_time_to_collapse_ps"] = summary["median_time_to_collapse_ps"]
        entry["collapsed_fraction"] = f"{summary['n_collapsed']}/{summary['replicas']}"
        entry["mean_temperature"] = summary["mean_temperature"]
        entry["time_to_collapse_ps"] = summary["time_to_collapse_ps"]
        entry["replica_steps_per_second"] = summary["replica_steps_per_second"]
        criterion = summary["criterion"]
        survival[name] = np.asarray(summary["time_to_collapse_ps"])
        samples = [f for replica in read_samples(out / "simulations" / name) for f in replica
                   if composition_key(f) == key]
        if len(samples) < 2:
            continue
        metrics = sample_metrics(samples, reference_mol, seed=seed)
        sample_energy = np.asarray([f.info.get("model_energy", np.nan) for f in samples], dtype=float)
        reference_energy = _model_energy(run_dir, reference_mol)
        entry["energy_ks"], entry["energy_ks_pvalue"] = ks_test(sample_energy, reference_energy)
        entry.update({k: v for k, v in metrics.items() if not k.startswith("_")})
        entry["n_sample_frames"] = len(samples)
        hr_curves.setdefault("reference", (metrics["_r"], metrics["_h_ref"]))
        hr_curves[name] = (metrics["_r"], metrics["_h"])
        for label, (smp, ref) in metrics["_bonds_by_type"].items():
            bond_panels.setdefault(label, {"reference": ref})[name] = smp
            bond_notes.setdefault(label, {})[name] = f"KS {metrics['bond_ks_by_type'][label]:.3f}"
        for quantity, (smp, ref) in (("potential energy", (sample_energy, reference_energy)),
                                     ("bond lengths", metrics["_bonds"]),
                                     ("angles", tuple(np.degrees(a) for a in metrics["_angles"]))):
            ks_cdfs.setdefault(quantity, {"reference": ref})[name] = smp
        collapsed[name] = np.asarray(summary["collapsed"])
    plots.survival_plot(survival, time, out / "survival.png", collapsed)
    if ks_cdfs:  # the KS statistics of the table, as the two empirical CDFs they compare
        plots.ks_panels(ks_cdfs, out / "ks.png", units={"potential energy": "eV", "bond lengths": "Å",
                                                        "angles": "°"})
    if hr_curves:
        plots.overlay_plot(hr_curves, out / "hr.png", xlabel="r (Å)", ylabel="h(r) (1/Å)",
                           title="Interatomic distances")
        plots.distribution_panels(bond_panels, out / "bond_lengths.png", xlabel="bond length (Å)",
                                  annotations=bond_notes)
    return criterion


def _cell(value) -> str:
    """Table cells: three significant digits (whole numbers from 1000 up), text as is, lists joined."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, bool) or not isinstance(value, float | int):
        return str(value)
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


#: what a collapse is, by the criterion the simulations used (simulate's defaults; ``auto`` picks graph or rdf)
COLLAPSE_TEXT = {
    "graph": "a bond graph the test frames never visit (a reference bond 0.5 Å beyond its mean, or a new one) "
             "lasting 50 fs",
    "bond": "a bond 0.5 Å from its mean over the test frames (Fu et al.'s bond rule)",
    "rdf": "the h(r) of a replica's last 1 ps more than 0.25 (∫|h − h_ref| dr) from the test frames' (Fu et al.'s "
           "rule for crystals and liquids; nothing is judged before 1 ps)",
}


def write_report(results: dict[str, dict], settings: dict, out: Path) -> Path:
    """``report.md``: settings, one table (a column per model) and the plots."""
    names = list(results)
    rows = [[label] + [_cell(results[n].get(key, "–")) for n in names] for key, label in ROWS
            if any(key in results[n] for n in names)]
    header = ["metric"] + names
    lines = ["# boltzmatch comparison", ""]
    lines.append(f"Test frames: `{settings['test']}` ({settings['n_test_frames']} frames), "
                 f"temperature {settings['temperature']:.0f} K.")
    if settings["simulate"]:
        lines.append(f"MD: {settings['replicas']} replicas × {settings['time_ps']} ps, {settings['integrator']}, "
                     f"timestep {settings['timestep_fs']} fs, seed {settings['seed']} (the same for every model); "
                     f"collapse = {COLLAPSE_TEXT[settings.get('criterion', 'graph')]}. The distribution metrics "
                     "(h(r) down) are over each replica's frames before its collapse: a model whose replicas "
                     "collapse at once is judged on the few frames near its starting frames, which are "
                     "reference frames, so read them beside 'MD frames judged'.")
    no_zero = [n for n in names if results[n].get("energy_zero") is False]
    if no_zero:
        lines.append(f"{', '.join(no_zero)}: trained without energies, so the energy zero is arbitrary; "
                     "energies are shown with per-element offsets removed (table and parity; the trace: its "
                     "mean offset).")
    lines += ["", markdown_table([[str(c) for c in row] for row in rows], header)]
    lines.append("")
    figures = [("parity.png", "Parity: predicted against reference energy and forces"),
               ("energy_trajectory.png", "Energy along the held-out trajectory, one panel per model"),
               ("survival.png", "Fraction of replicas still stable against time"),
               ("ks.png", "KS tests as plots: empirical CDFs of MD samples and reference, D marked where it is "
                          "reached (energy, all bond lengths, all angles, pooled)"),
               ("hr.png", "h(r): distribution of interatomic distances"),
               ("bond_lengths.png", "Bond-length distributions with KS statistics")]
    for file, caption in figures:
        if (out / file).exists():
            lines += [f"## {caption}", "", f"![{caption}]({file})", ""]
    contours = sorted((out / "landscapes").glob("*/contour.png")) if (out / "landscapes").exists() else []
    if contours:
        lines += ["## Loss landscapes (Fisher loss, random filter-normalised directions)", ""]
        lines += [f"![{p.parent.name}](landscapes/{p.parent.name}/contour.png)" for p in contours] + [""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def format_comparison(result: dict) -> str:
    """The plain-text table printed at the end of ``boltzmatch compare``."""
    models = result["models"]
    names = list(models)
    rows = [[label] + [_cell(models[n].get(key, "–")) for n in names] for key, label in ROWS
            if any(key in models[n] for n in names)]
    return format_table(rows, header=["metric"] + names, title="Comparison")
