"""`refine`: simulate, label where the model leaves the reference, Fisher-fine-tune, round after round.

Each round (``OUT/round_NN/``):

1. ``md/``: batched MD with the current model (:func:`~boltzmatch.simulate.simulate`, seed
   ``seed + round``), starting from the training frames.
2. ``candidates.xyz``: up to ``label_budget`` frames. With ``selection="uniform"`` (the default),
   drawn uniformly from every written frame. With ``selection="failures"``, half from the stretch
   before each collapse (the last ``window`` frames a collapsed replica wrote, the collapse frame
   first) and the rest where a cheap uncertainty signal is highest: the force disagreement (eV/Å, max
   over atoms) between the current model and the run refine started from (from round 1 on), else the
   largest bond deviation (Å) from the reference mean bond lengths, at most an eighth of the budget
   from one replica. With Fisher fine-tuning, uniform frames lowered the held-out force error on
   malonaldehyde, uracil, glycine and N-methylacetamide, where ``failures`` raised it on three of them;
   ``failures`` labels mostly frames eV above anything thermal. It left glycine less stable (14/32
   collapsed against 1/32) and malonaldehyde more (0/32 against 3/32), with a lower h(r) error there and
   on uracil (docs/architecture.md). Chosen deterministically for the seed (:mod:`.refine_select`). With
   ``selection="none"`` nothing is labelled: no reference call at all.
3. ``labels.xyz``: the candidates labelled by the reference method (xtb, emt, openmm); every frame is
   appended and flushed as soon as it is labelled, so a killed round loses nothing labelled and a
   resumed one labels only the rest.
4. ``model/``: :func:`~boltzmatch.training.finetune` of the current model with ``objective`` (default
   the Fisher objective at the MD temperature) on the union of the training frames and every label
   so far (reference and model samples: the symmetric Fisher divergence of the issue);
   ``energy-forces`` retrains on energies and forces instead. The Fisher objective weighs force
   residuals beyond ``huber_delta`` (default 0.5 eV/Å) linearly: labels taken where the model
   fails sit up to ~10 eV above the training frames with 10–18 eV/Å forces, and squared residuals
   there outweighed the rest (the held-out force error rose over rounds; docs/architecture.md).
   ``fisher-cd`` (the default with ``selection="none"``) adds contrastive divergence whose model samples
   start from every MD frame of the rounds so far (``negatives.xyz``, positions only; weight
   ``cd_weight``): the likelihood of the reference positions under p_θ ∝ exp(−βU_θ) raises the energy
   where the model's MD goes and the reference never does (:mod:`boltzmatch.objectives.fisher_cd`).

After the last round one more MD judges the final model. ``refine.csv``/``refine.json`` hold a row per
round: labels used (cumulative), median time to collapse (ps), collapsed replicas, held-out force MAE
(meV/Å, with ``test``); ``refine.png`` plots them. A finished stage is never redone, so a killed
``refine`` resumes at the stage it was in.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ..data.labelling import label_frames, labelled_only
from ..errors import BoltzmatchError
from ..utils.atomic import atomic_write_text
from ..utils.device import resolve_device
from ..utils.warnings_once import each_warning_once
from . import refine_select as select


@dataclass
class RefineSettings:
    """Settings of a refine run (K, ps, fs; ``label_budget`` reference calls per round)."""

    run_dir: str
    data: str
    calculator: str = "xtb"
    temperature: float = 500.0
    rounds: int = 3
    replicas: int = 32
    time: float = 10.0
    timestep: float = 0.5
    label_budget: int = 64
    window: int = 5
    epochs: int = 30
    lr: float = 1e-4
    batch_size: int = 32
    max_minutes: float | None = None
    test: str | None = None
    seed: int = 0
    selection: str = "uniform"
    objective: str = "fisher"
    cd_weight: float = 1.0
    energy_weight: float = 0.0
    huber_delta: float | None = None  # eV/Å as used (resolve_huber_delta); None: squared residuals
    device: str = "auto"  # where MD and fine-tuning compute (auto: CUDA when present)
    cuda_graphs: bool = False  # MD's force calls and the fine-tuning steps replayed as CUDA graphs (on CUDA)
    pressure: float | None = None  # GPa: the MD at this pressure (NPT, crystals; simulate --pressure); None: NVT
    pressure_coupling: str = "isotropic"  # which cell axes the barostat scales together (simulate's)


SELECTIONS = ("failures", "uniform", "none")
REFINE_OBJECTIVES = ("fisher", "energy-forces", "fisher-cd")
#: eV/Å: the Fisher objective's Huber δ when none is given; on aspirin and malonaldehyde (xTB, 500 K)
#: it ended with a lower held-out force error than squared residuals (benchmarks/refine.py)
DEFAULT_HUBER_DELTA = 0.5
#: what runs written before an option existed used (their settings.json lacks it)
_LEGACY = {"selection": "failures", "objective": "fisher", "energy_weight": 0.0, "huber_delta": None,
           "cd_weight": 1.0, "device": "auto", "cuda_graphs": False, "pressure": None,
           "pressure_coupling": "isotropic"}


def _stored_settings(stored: dict) -> dict:
    """settings.json as the current names say it: options added later get what older runs did, and the
    labelling method, once ``reference``, is ``calculator``."""
    stored = {**_LEGACY, **stored}
    if "reference" in stored:
        stored["calculator"] = stored.pop("reference")
    return stored


FISHER_OBJECTIVES = ("fisher", "fisher-cd")


def resolve_objective(selection: str, objective: str | None) -> str:
    """The fine-tuning objective: ``fisher-cd`` where no label is taken (``selection="none"``), else ``fisher``."""
    if objective is not None:
        return objective
    return "fisher-cd" if selection == "none" else "fisher"


def resolve_huber_delta(objective: str, huber_delta: float | None) -> float | None:
    """The Huber δ (eV/Å) a refine run uses: ``None`` is the default (:data:`DEFAULT_HUBER_DELTA` with
    the Fisher objective, none with energy-forces), 0 turns it off (squared residuals)."""
    if huber_delta is None:
        return DEFAULT_HUBER_DELTA if objective in FISHER_OBJECTIVES else None
    if huber_delta < 0 or (huber_delta > 0 and objective not in FISHER_OBJECTIVES):
        raise BoltzmatchError(f"huber-delta must be positive (0: off) and only goes with objective fisher, "
                              f"got {huber_delta} with {objective}")
    return float(huber_delta) if huber_delta > 0 else None


def refine(run_dir: str | Path, *, data: str | Path, out: str | Path, calculator: str = "xtb",
           temperature: float = 500.0, rounds: int = 3, replicas: int = 32, time: float = 10.0,  # noqa: A002
           timestep: float = 0.5, label_budget: int = 64, window: int = 5, epochs: int = 30, lr: float = 1e-4,
           batch_size: int = 32, max_minutes: float | None = None, test: str | Path | None = None, seed: int = 0,
           selection: str = "uniform", objective: str | None = None, energy_weight: float = 0.0,
           huber_delta: float | None = None, cd_weight: float = 1.0, progress: bool = True,
           reference: str | None = None, workers: int = 1, scheduler: str | None = None,
           device: str = "auto", cuda_graphs: bool = False, pressure: float | None = None,
           pressure_coupling: str = "isotropic") -> dict:
    """Refine the model of ``run_dir`` (a run or a model file) by ``rounds`` rounds; returns the summary.

    ``calculator`` labels the chosen frames (xtb, emt, openmm; ``reference`` is its old name, deprecated).

    ``temperature`` in K, ``time`` ps per replica, ``timestep`` fs, ``label_budget`` reference calls per
    round, ``window`` frames before each collapse to draw from; ``selection`` (failures, uniform, none) and
    ``objective`` (fisher, energy-forces, fisher-cd; default fisher, fisher-cd with selection none) as in the
    module docstring; ``cd_weight`` weighs fisher-cd's likelihood term; ``energy_weight`` adds the
    supervised per-atom energy MSE (eV²) with that weight to the Fisher objective and ``huber_delta`` (eV/Å)
    makes it robust to outlying force residuals (:class:`~boltzmatch.objectives.score.ScoreMatching`;
    :func:`resolve_huber_delta`: default 0.5 eV/Å with the Fisher objective, 0 turns it off).
    ``out`` is resumed when it holds the same settings; other settings there are an error.
    ``workers``/``scheduler`` label on a local Dask cluster of that many processes or on a running one
    (:func:`~boltzmatch.data.labelling.label_frames`); the labels are the same whichever labels them.
    ``device`` is where MD and fine-tuning compute; ``cuda_graphs`` replays MD's force calls and the fine-tuning
    steps as CUDA graphs there (docs/gpu.md). ``pressure`` (GPa) runs the MD of crystals at that pressure
    (``simulate --pressure``, its axes scaled by ``pressure_coupling``): the frames it labels then carry the
    volumes the model itself finds, and their stress.
    """
    if reference is not None:
        warnings.warn("refine(reference=...) is deprecated and goes in the next release; use calculator=...",
                      DeprecationWarning, stacklevel=2)
        calculator = reference
    out = Path(out)
    objective = resolve_objective(selection, objective)
    settings = RefineSettings(run_dir=str(run_dir), data=str(data), calculator=calculator,
                              temperature=float(temperature), rounds=int(rounds), replicas=int(replicas),
                              time=float(time), timestep=float(timestep), label_budget=int(label_budget),
                              window=int(window), epochs=int(epochs), lr=float(lr), batch_size=int(batch_size),
                              max_minutes=max_minutes, test=None if test is None else str(test), seed=int(seed),
                              selection=selection, objective=objective, energy_weight=float(energy_weight),
                              huber_delta=resolve_huber_delta(objective, huber_delta), cd_weight=float(cd_weight),
                              device=str(resolve_device(device)) if device != "auto" else "auto",
                              cuda_graphs=bool(cuda_graphs), pressure=None if pressure is None else float(pressure),
                              pressure_coupling=pressure_coupling)
    _validate(settings)
    from ..data import read_structures
    from ..runs.run_dir import read_config

    read_config(settings.run_dir)  # bad inputs fail here, before OUT exists
    train = read_structures(settings.data)
    if settings.pressure is not None:
        from ..simulate import barostat

        barostat.check_barostat_settings(settings.pressure, barostat.DEFAULT_BAROSTAT_TAU,
                                         barostat.DEFAULT_COMPRESSIBILITY, settings.pressure_coupling)
        barostat.check_structures(train, settings.data, settings.pressure_coupling)  # before OUT exists
    out.mkdir(parents=True, exist_ok=True)
    stored = out / "settings.json"
    if stored.exists():
        # runs written before these options existed hold none: read them as what those runs did
        # the device is where it runs, not what it computes: a run started on a GPU resumes on a CPU (and graphs
        # replay the same kernels)
        previous = {**_stored_settings(json.loads(stored.read_text())), "device": settings.device,
                    "cuda_graphs": settings.cuda_graphs}
        asked = asdict(settings)
        if previous != asked:
            differ = ", ".join(f"{key} {previous.get(key)!r} (asked {asked.get(key)!r})"
                               for key in sorted(set(previous) | set(asked)) if previous.get(key) != asked.get(key))
            raise BoltzmatchError(f"{out}: holds a refine run with other settings: {differ}; pass those to resume "
                                  "it, or choose another --out")
    else:
        atomic_write_text(stored, json.dumps(asdict(settings), indent=2))

    with each_warning_once():  # a round's checks (reference, device) would warn again every round
        return _rounds(settings, out, train, workers, scheduler, progress)


def _rounds(settings: RefineSettings, out: Path, train: list[Atoms], workers: int, scheduler: str | None,
            progress: bool) -> dict:
    """Every round from the first not yet finished (a finished stage is never redone), then the final MD."""
    rows = []
    current: Path | str = settings.run_dir
    for number in range(settings.rounds + 1):
        folder = out / f"round_{number:02d}"
        summary = _simulate(current, train, folder / "md", settings, number, progress)
        labels_used = 0 if settings.selection == "none" else settings.label_budget * number
        row = {"round": number, "model": str(current), "labels_used": labels_used,
               "median_time_to_collapse_ps": summary["median_time_to_collapse_ps"],
               "collapsed": summary["n_collapsed"], "replicas": summary["replicas"],
               "force_mae_meV_A": _test_force_mae(current, settings.test)}
        rows.append(row)
        _write_rows(out, rows, settings)
        if number == settings.rounds:
            break
        if settings.selection == "none":
            union = Path(settings.data)
        else:
            candidates = select.candidates(folder, current, train, settings, number)
            label_frames(candidates, folder / "labels.xyz", settings.calculator, workers=workers,
                         scheduler=scheduler, progress=progress)
            union = _union(out, train, number)
        negatives = _negatives(out, number) if settings.objective == "fisher-cd" else None
        current = _finetune(current, union, folder / "model", settings, progress, negatives)
    return {"out": str(out), "rows": rows, "plot": str(_plot(out, rows)), "selection": settings.selection,
            "objective": settings.objective, "huber_delta": settings.huber_delta, "cd_weight": settings.cd_weight}


def _validate(settings: RefineSettings) -> None:
    from ..data.generate import CALCULATORS

    if settings.calculator not in CALCULATORS:
        raise BoltzmatchError(f"unknown calculator {settings.calculator!r}; expected one of {', '.join(CALCULATORS)}")
    if settings.selection not in SELECTIONS:
        raise BoltzmatchError(f"unknown selection {settings.selection!r}; expected one of {', '.join(SELECTIONS)}")
    if settings.objective not in REFINE_OBJECTIVES:
        raise BoltzmatchError(f"unknown objective {settings.objective!r}; "
                              f"expected one of {', '.join(REFINE_OBJECTIVES)}")
    for key in ("rounds", "replicas", "label_budget", "window", "epochs", "batch_size"):
        value = getattr(settings, key)
        if value < (0 if key == "rounds" else 1):
            kind = "a non-negative" if key == "rounds" else "a positive"
            raise BoltzmatchError(f"{key.replace('_', '-')} must be {kind} integer, got {value}")
    if settings.selection == "none" and settings.objective != "fisher-cd":
        raise BoltzmatchError(f"selection none takes no labels: it goes with objective fisher-cd, got "
                              f"{settings.objective}")
    if not settings.cd_weight >= 0:
        raise BoltzmatchError(f"cd-weight must be ≥ 0, got {settings.cd_weight}")
    if settings.energy_weight < 0 or (settings.energy_weight and settings.objective not in FISHER_OBJECTIVES):
        raise BoltzmatchError(f"energy-weight must be non-negative and only goes with objective fisher, "
                              f"got {settings.energy_weight} with {settings.objective}")
    for key in ("temperature", "time", "timestep", "lr"):
        if not getattr(settings, key) > 0:
            raise BoltzmatchError(f"{key} must be positive, got {getattr(settings, key)}")


def _simulate(model, train: list[Atoms], md: Path, settings: RefineSettings, number: int, progress: bool) -> dict:
    from ..simulate import simulate

    if (md / "summary.json").exists() and json.loads((md / "summary.json").read_text()).get("complete"):
        return json.loads((md / "summary.json").read_text())
    resume = (md / "checkpoint.pt").exists()
    return simulate(model, train, out=md, temperature=settings.temperature, replicas=settings.replicas,
                    time=settings.time, timestep=settings.timestep, seed=settings.seed + number, resume=resume,
                    interval=_interval(settings), progress=progress, device=settings.device,
                    cuda_graphs=settings.cuda_graphs, pressure=settings.pressure,
                    pressure_coupling=settings.pressure_coupling)


def _interval(settings: RefineSettings) -> int:
    """Steps between written frames: about 200 frames per replica, at least every 10 steps."""
    steps = int(round(settings.time * 1000 / settings.timestep))
    return max(10, steps // 200)


def _union(out: Path, train: list[Atoms], number: int) -> Path:
    """Training frames plus every label up to round ``number`` (``round_NN/union.xyz``)."""
    from ase.io import read

    from ..data import write_structures

    path = out / f"round_{number:02d}" / "union.xyz"
    if not path.exists():
        labels = []
        for k in range(number + 1):
            frames = read(out / f"round_{k:02d}" / "labels.xyz", index=":")
            kept, failed = labelled_only(frames)
            if failed and k == number:
                warnings.warn(f"{out / f'round_{k:02d}' / 'labels.xyz'}: {len(failed)} of {len(frames)} frames "
                              f"could not be labelled ({failed[0]}); fine-tuning leaves them out", stacklevel=2)
            labels += kept
        write_structures(path, list(train) + labels)
    return path


def _negatives(out: Path, number: int) -> Path:
    """Every frame the MD of rounds 0 … ``number`` wrote (``round_NN/negatives.xyz``): the model's own
    samples, positions only, where fisher-cd's chains start."""
    from ..data import write_structures
    from ..simulate.output import read_samples

    path = out / f"round_{number:02d}" / "negatives.xyz"
    if not path.exists():
        frames = [frame for k in range(number + 1) for replica in read_samples(out / f"round_{k:02d}" / "md")
                  for frame in replica]
        if not frames:
            raise BoltzmatchError(f"{out}: the simulations wrote no frames to use as negatives")
        for frame in frames:
            frame.calc = None
        write_structures(path, frames)
    return path


def _finetune(model, union: Path, run: Path, settings: RefineSettings, progress: bool,
              negatives: Path | None = None) -> Path:
    from ..runs import run_dir as rd
    from ..training import finetune, train

    if (run / "summary.txt").exists():
        return run
    if (run / rd.CHECKPOINT).exists():
        train(union, out=run, resume=True, progress=progress, device=settings.device, cuda_graphs=settings.cuda_graphs)
        return run
    fisher = settings.objective in FISHER_OBJECTIVES
    cd = {"negatives": str(negatives.resolve()), "weight": settings.cd_weight} if negatives is not None else None
    finetune(model, data=union, out=run, objective=settings.objective, cd_options=cd,
             temperature=settings.temperature if fisher else None,
             energy_weight=settings.energy_weight if fisher else None,
             huber_delta=settings.huber_delta if fisher else None,
             epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size, seed=settings.seed,
             max_minutes=settings.max_minutes, progress=progress, device=settings.device,
             cuda_graphs=settings.cuda_graphs)
    return run


def _test_force_mae(model, test: str | None) -> float | None:
    if test is None:
        return None
    from ..analysis.evaluate import evaluate

    return 1000 * float(evaluate(model, test)["force_mae"])


def _write_rows(out: Path, rows: list[dict], settings: RefineSettings) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "refine.csv", buffer.getvalue())
    atomic_write_text(out / "refine.json", json.dumps({"settings": asdict(settings), "rounds": rows}, indent=2))


def _plot(out: Path, rows: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..analysis.plots import draw_survival
    from ..utils.atomic import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    times, collapsed, total = {}, {}, 0.0
    for r in rows:
        md = json.loads((out / f"round_{r['round']:02d}" / "md" / "summary.json").read_text())
        name = f"round {r['round']} ({r['labels_used']} labels)"
        times[name], collapsed[name] = np.asarray(md["time_to_collapse_ps"]), np.asarray(md["collapsed"])
        total = max(total, float(md["time_ps"]))
    draw_survival(axes[0], times, total, collapsed)
    labels = [r["labels_used"] for r in rows]
    axes[1].plot(labels, [r["collapsed"] / r["replicas"] for r in rows], "o-", label="collapsed fraction")
    axes[1].set_xlabel("reference labels used")
    axes[1].set_ylabel("collapsed fraction")
    axes[1].set_ylim(-0.02, 1.02)
    if all(r["force_mae_meV_A"] is not None for r in rows):
        twin = axes[1].twinx()
        twin.plot(labels, [r["force_mae_meV_A"] for r in rows], "s--", color="tab:orange")
        twin.set_ylabel("held-out force MAE (meV/Å)", color="tab:orange")
    fig.tight_layout()
    return save_figure(fig, out / "refine.png", dpi=120)


def format_refine_summary(summary: dict) -> str:
    from ..utils.table import format_table

    rows = [[r["round"], r["labels_used"], f"{r['median_time_to_collapse_ps']:.2f}",
             f"{r['collapsed']}/{r['replicas']}",
             "" if r["force_mae_meV_A"] is None else f"{r['force_mae_meV_A']:.1f}"] for r in summary["rows"]]
    objective = summary.get("objective", "fisher")
    if objective == "fisher-cd":
        objective += f", cd weight {summary.get('cd_weight', 1.0):g}"
    if summary.get("huber_delta"):
        objective += f", Huber δ {summary['huber_delta']:g} eV/Å"
    return format_table(rows, header=["round", "labels used", "median collapse (ps)", "collapsed",
                                      "test force MAE (meV/Å)"],
                        title=f"Refine: {summary['out']} (labels: "
                              f"{summary.get('selection', 'failures').replace('none', 'none, no reference call')}, "
                              f"fine-tuning: {objective})")
