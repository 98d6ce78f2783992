"""``simulate``: batched MD of many replicas with a trained model, with live stability checks.

One model call per step evaluates every replica that is still stable. A replica stops when it
collapses (bond criterion), turns non-finite or overheats; its trajectory up to that point is
kept and the others go on. Output in ``out``:

- ``trajectories/replica_NNN.xyz`` (or ``.traj``): a frame every ``interval`` steps;
- ``thermo.csv``: time (ps), temperature (K), potential, kinetic, total and conserved energy (eV);
- ``summary.json``: rewritten atomically while running (``complete: false``) and at the end;
- ``checkpoint.pt``: every ``checkpoint_seconds``; ``resume=True`` continues a killed run.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.data import atomic_masses

from ..errors import BoltzmatchError
from ..models.filter_table import DEFAULT_SPACING
from ..utils.atomic import atomic_write_text
from ..utils.table import format_table
from .integrators import MDState, make_integrator, maxwell_boltzmann, remove_drift
from .output import ThermoLog, TrajectoryWriters
from .stability import BondReference, StabilityMonitor

#: Å beyond the model's cutoff within which MD keeps candidate pairs (see :class:`ModelForces`)
NEIGHBOR_SKIN = 1.0

SETTINGS_KEYS = ("temperature", "replicas", "time", "timestep", "integrator", "friction", "tau", "interval",
                 "check_interval", "seed", "format", "max_deviation", "max_temperature")


class ModelForces:
    """Energy (eV) and forces (eV/Å) of the active replicas from an ``EnergyModel``, one call per step.

    Positions stay float64 in the integrator; the model sees its own dtype. Parameters are frozen,
    so the backward pass computes position gradients only. For a model with a ``cutoff`` (Å), the
    candidate pairs are found with ``cutoff + skin`` and handed to the model on the batch; they are
    searched again only once an atom has moved more than ``skin / 2`` (Å) since the last search
    (the edges the model sees are exactly those of a fresh search). ``model_seconds`` and
    ``search_seconds`` accumulate the wall time spent in the model's forward and backward and in
    neighbour searches, so a run can state the share of a step spent outside the model.
    """

    def __init__(self, model: torch.nn.Module, numbers: torch.Tensor, structure_index: torch.Tensor,
                 cell: torch.Tensor, pbc: torch.Tensor, *, skin: float = NEIGHBOR_SKIN, exact_filters: bool = False):
        from ..data.atoms_batch import AtomsBatch

        self._batch_type = AtomsBatch
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        # a model that can tabulate its distance-only networks (SchNet's filters) evaluates them from the
        # table: forces within 1e-5 eV/Å of the exact model's, 1.2x the steps per second (models/filter_table.py)
        tabulate = getattr(model, "for_md", None)
        self.evaluate = model if exact_filters or tabulate is None else tabulate()
        self.filters = "exact" if self.evaluate is model else f"tabulated ({DEFAULT_SPACING} Å spacing)"
        from ..models.base import model_dtype

        self.dtype = model_dtype(model)
        tensors = list(model.parameters()) + list(model.buffers())
        self.device = tensors[0].device if tensors else torch.device("cpu")
        cutoff = getattr(model, "cutoff", None)
        self.cutoff = float(cutoff) if isinstance(cutoff, int | float) and cutoff > 0 else None
        self.skin = float(skin)
        self.model_seconds = self.search_seconds = 0.0
        self.searches = 0
        self.set_system(numbers, structure_index, cell, pbc)

    def set_system(self, numbers, structure_index, cell, pbc) -> None:
        self.numbers = numbers.to(self.device)
        self.structure_index = structure_index.to(self.device)
        self.cell = cell.to(self.device, self.dtype)
        self.pbc = pbc.to(self.device)
        self.pairs = None  # replicas changed: search again

    def __call__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ..models.neighbors import find_pairs

        pos = positions.detach().to(self.device, self.dtype)
        batch = self._batch_type(positions=pos, numbers=self.numbers, structure_index=self.structure_index,
                                 cell=self.cell, pbc=self.pbc, pairs=self.pairs)
        if self.cutoff is not None and (self.pairs is None or not self.pairs.covers(batch, self.cutoff)):
            start = time.perf_counter()
            self.pairs = batch.pairs = find_pairs(batch, self.cutoff + self.skin)
            self.search_seconds += time.perf_counter() - start
            self.searches += 1
        start = time.perf_counter()
        with torch.enable_grad():
            batch.positions = pos.requires_grad_(True)
            energy = self.evaluate(batch)
            (grad,) = torch.autograd.grad(energy.sum(), batch.positions)
        self.model_seconds += time.perf_counter() - start
        return energy.detach().to(positions), (-grad).to(positions)


@dataclass
class _Progress:
    """Per-replica bookkeeping (numpy arrays over all replicas)."""

    collapse_time: np.ndarray  # ps, nan while running
    reason: list
    temperature_sum: np.ndarray
    temperature_count: np.ndarray


def choose_starts(structures: list[Atoms], replicas: int, seed: int) -> np.ndarray:
    """Indices of the starting frames: without replacement when there are enough frames."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(structures), size=replicas, replace=replicas > len(structures))


def simulate(
    model_or_run_dir,
    start,
    *,
    out: str | Path,
    temperature: float = 500.0,
    replicas: int = 32,
    time: float = 10.0,  # noqa: A002  (the CLI flag is --time)
    timestep: float = 0.5,
    integrator: str = "langevin",
    friction: float = 0.01,
    tau: float = 100.0,
    interval: int = 20,
    check_interval: int = 10,
    seed: int = 0,
    format: str = "extxyz",  # noqa: A002
    reference=None,
    max_deviation: float = 0.5,
    max_temperature: float | None = None,
    write_trajectories: bool = True,
    checkpoint_seconds: float = 60.0,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    data_options: dict | None = None,
    skin: float = NEIGHBOR_SKIN,
    exact_filters: bool = False,
) -> dict:
    """Run ``replicas`` copies of MD with the model and return the summary (also ``out/summary.json``).

    Parameters
    ----------
    model_or_run_dir
        A run directory or an ``EnergyModel``.
    start
        Structures (path or ``list[Atoms]``) to draw starting frames from, with ``seed``.
    temperature
        Thermostat and initial-velocity temperature, K.
    time, timestep
        Simulated time per replica in ps; timestep in fs.
    integrator
        ``langevin`` (BAOAB, ``friction`` in 1/fs), ``verlet`` (NVE) or ``nose-hoover`` (``tau`` in fs).
    interval, check_interval
        Steps between written frames / thermo lines, and between stability checks.
    reference
        Structures whose mean bond lengths define collapse (default: ``start``).
    max_deviation
        Bond-length deviation (Å) that counts as collapse.
    max_temperature
        Instantaneous temperature (K) that counts as a runaway; default 5 × ``temperature``.
    skin
        Å added to the model's cutoff for the candidate pairs reused between steps (see
        :class:`ModelForces`); it changes speed only, never the forces. 0 searches every step.
    exact_filters
        Evaluate SchNet's filter networks exactly instead of from a table of them (the default,
        :mod:`boltzmatch.models.filter_table`: forces within ~1e-5 eV/Å of the exact model's, ~1.2×
        the steps per second).

    The summary holds ``time_to_collapse_ps`` (per replica; the full length when it never
    collapsed), ``median_time_to_collapse_ps``, ``mean_temperature`` (K, over all checks before
    collapse), the collapse reasons, and ``replica_steps_per_second``.
    """
    from ..data import read_structures
    from ..runs.run_dir import load

    out = Path(out)
    settings = dict(temperature=float(temperature), replicas=int(replicas), time=float(time),
                    timestep=float(timestep), integrator=integrator, friction=float(friction), tau=float(tau),
                    interval=int(interval), check_interval=int(check_interval), seed=int(seed), format=format,
                    max_deviation=float(max_deviation),
                    max_temperature=float(max_temperature if max_temperature is not None else 5 * temperature))
    _validate(settings)
    dev = torch.device(device)
    model = (load(model_or_run_dir, map_location=dev) if isinstance(model_or_run_dir, str | Path)
             else model_or_run_dir.to(dev))
    model_name = str(model_or_run_dir) if isinstance(model_or_run_dir, str | Path) else type(model).__name__

    start_name = str(start) if isinstance(start, str | Path) else "start structures"
    start_frames = read_structures(start, **(data_options or {})) if isinstance(start, str | Path) else list(start)
    if not start_frames:
        raise BoltzmatchError(f"{start_name}: no structures to start from")
    if reference is None:
        reference_frames, reference_name = start_frames, start_name
    else:
        reference_name = str(reference) if isinstance(reference, str | Path) else "reference structures"
        reference_frames = (read_structures(reference, **(data_options or {})) if isinstance(reference, str | Path)
                            else list(reference))
    picks = choose_starts(start_frames, settings["replicas"], settings["seed"])
    structures = [start_frames[i].copy() for i in picks]
    monitor = StabilityMonitor(structures, BondReference(reference_frames, reference_name),
                               max_deviation=settings["max_deviation"],
                               max_temperature=settings["max_temperature"])
    if hasattr(model, "check_elements"):
        model.check_elements(torch.as_tensor(np.concatenate([a.numbers for a in structures])))

    n_steps = int(round(settings["time"] * 1000.0 / settings["timestep"]))
    generator = torch.Generator(device=dev).manual_seed(settings["seed"])
    integ = make_integrator(integrator, settings["timestep"], friction=settings["friction"], tau=settings["tau"],
                            generator=generator)
    numbers = torch.as_tensor(np.concatenate([a.numbers for a in structures]), dtype=torch.long, device=dev)
    counts = torch.as_tensor([len(a) for a in structures], device=dev)
    structure_index = torch.repeat_interleave(torch.arange(len(structures), device=dev), counts)
    cell = torch.as_tensor(np.stack([np.asarray(a.cell) for a in structures]), dtype=torch.float64, device=dev)
    pbc = torch.as_tensor(np.stack([a.pbc for a in structures]), device=dev)
    forces = ModelForces(model, numbers, structure_index, cell, pbc, skin=skin, exact_filters=exact_filters)

    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.pt"
    if resume and checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, weights_only=False, map_location=dev)
        if ckpt["settings"] != settings:
            changed = sorted(k for k in settings if ckpt["settings"].get(k) != settings[k])
            raise BoltzmatchError(f"{checkpoint_path}: was written with other settings ({', '.join(changed)}); "
                                  "resume with the same ones or choose a new --out")
        state = MDState(**ckpt["state"])
        integ.load_state_dict(ckpt["integrator"])
        generator.set_state(ckpt["generator"])
        active = list(ckpt["active"])
        book = _Progress(**ckpt["progress"])
        first_step, wall_before = ckpt["step"] + 1, ckpt["wall_seconds"]
        writers = TrajectoryWriters(out / "trajectories", structures, format, offsets=ckpt["trajectory_offsets"],
                                    frames=ckpt["trajectory_frames"]) if write_trajectories else None
        thermo = ThermoLog(out / "thermo.csv", offset=ckpt["thermo_offset"])
        keep = torch.zeros(len(structures), dtype=torch.bool, device=dev)
        keep[active] = True
        atom_keep = keep[structure_index]
        forces.set_system(numbers[atom_keep], state.structure_index, cell[keep], pbc[keep])
        monitor.set_active(active)
    else:
        if resume:
            print(f"boltzmatch: no checkpoint in {out}; starting a new simulation")
        positions = torch.as_tensor(np.concatenate([a.positions for a in structures]), dtype=torch.float64,
                                    device=dev)
        masses = torch.as_tensor(atomic_masses[numbers.cpu().numpy()], dtype=torch.float64, device=dev)[:, None]
        kT = torch.full((len(structures),), units.kB * settings["temperature"], dtype=torch.float64, device=dev)
        dof = (3 * counts - (3 if integ.removes_drift else 0)).to(torch.float64).clamp(min=1)
        state = MDState(positions=positions, velocities=torch.zeros_like(positions),
                        forces=torch.zeros_like(positions),
                        energy=torch.zeros(len(structures), dtype=torch.float64, device=dev),
                        masses=masses, structure_index=structure_index, kT=kT, dof=dof)
        state.velocities = maxwell_boltzmann(masses[:, 0], kT[structure_index], generator)
        if integ.removes_drift:
            remove_drift(state)
        state.energy, state.forces = forces(state.positions)
        active = list(range(len(structures)))
        book = _Progress(collapse_time=np.full(len(structures), np.nan), reason=[None] * len(structures),
                         temperature_sum=np.zeros(len(structures)), temperature_count=np.zeros(len(structures)))
        first_step, wall_before = 1, 0.0
        writers = TrajectoryWriters(out / "trajectories", structures, format) if write_trajectories else None
        thermo = ThermoLog(out / "thermo.csv")
        atomic_write_text(out / "simulation.json", json.dumps(
            {"model": model_name, "start": start_name, "reference": reference_name,
             "start_indices": picks.tolist(), **settings}, indent=2))
        _record(0, 0.0, state, active, integ, writers, thermo)

    dt_ps = settings["timestep"] / 1000.0
    forces.model_seconds = forces.search_seconds = 0.0  # time the loop only
    forces.searches = 0
    t0 = _clock()
    last_checkpoint, last_summary = t0, -float("inf")  # first summary at the first recorded frame
    steps_done = 0
    replica_steps = 0
    complete = False

    def summary(done: bool) -> dict:
        wall = wall_before + _clock() - t0
        loop = max(_clock() - t0, 1e-9)
        timing = {"loop_seconds": loop, "model_seconds": forces.model_seconds,
                  "neighbor_search_seconds": forces.search_seconds, "neighbor_searches": forces.searches,
                  "filters": forces.filters,
                  "outside_model_fraction": max(0.0, 1.0 - forces.model_seconds / loop) if steps_done else 0.0}
        return _summary(book, settings, model_name, n_steps, min(step_reached, n_steps), dt_ps, done, wall,
                        replica_steps / loop, timing)

    step_reached = first_step - 1
    from ..utils.progress import progress_bar

    bar = progress_bar(total=n_steps, initial=first_step - 1, disable=not progress, unit="step", desc="simulate",
               dynamic_ncols=True)
    bar.set_postfix_str(f"stable {len(active)}/{len(structures)}")
    stop = _DeferredStop()
    at_step_boundary = False
    try:
        with stop:
            for step in range(first_step, n_steps + 1):
                if not active:
                    break
                integ.step(state, forces)
                replica_steps += len(active)
                steps_done += 1
                step_reached = step
                if step % settings["check_interval"] == 0 or step == n_steps:
                    active, state = _check(step * dt_ps, state, active, monitor, integ, forces, writers, book)
                    bar.set_postfix_str(f"stable {len(active)}/{len(structures)}")
                if step % settings["interval"] == 0:
                    _record(step, step * dt_ps, state, active, integ, writers, thermo)
                    now = _clock()
                    if now - last_summary > 5.0:
                        atomic_write_text(out / "summary.json", json.dumps(summary(False), indent=2))
                        last_summary = now
                    if now - last_checkpoint > checkpoint_seconds:
                        _checkpoint(checkpoint_path, step, state, integ, generator, active, book, settings, writers,
                                    thermo, wall_before + now - t0)
                        last_checkpoint = now
                bar.update(1)
                if stop.requested:
                    at_step_boundary = True
                    raise KeyboardInterrupt
        complete = True
    except KeyboardInterrupt:
        # Ctrl-C and SIGTERM are deferred to the end of a step, so the state is consistent there;
        # an interrupt raised inside a step leaves the last periodic checkpoint as it was
        if at_step_boundary and steps_done:
            _checkpoint(checkpoint_path, step_reached, state, integ, generator, active, book, settings, writers,
                        thermo, wall_before + _clock() - t0)
        raise
    finally:
        bar.close()
        if writers is not None:
            writers.close()
        thermo.close()
        result = summary(complete)
        atomic_write_text(out / "summary.json", json.dumps(result, indent=2))
    if complete and checkpoint_path.exists():
        checkpoint_path.unlink()
    return result


class _DeferredStop:
    """Within the block, SIGINT and SIGTERM (main thread) or the thread's progress observer's stop
    request (the desktop app) only set ``requested``; the loop stops after the step."""

    def __init__(self):
        self._signalled = False
        self._previous: dict = {}
        self._observer = None

    @property
    def requested(self) -> bool:
        return self._signalled or (self._observer is not None and self._observer.stop_requested)

    def _handler(self, signum, frame):  # noqa: ARG002
        self._signalled = True

    def __enter__(self):
        from ..utils.progress import current_observer

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        self._observer = current_observer()
        if self._observer is not None:
            self._observer.graceful += 1
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._observer is not None:
            self._observer.graceful -= 1


def _check(time_ps, state, active, monitor, integ, forces, writers, book):
    """Record temperatures, stop failing replicas; returns the new active list and state."""
    temps = state.temperature().tolist()
    for slot, r in enumerate(active):
        if np.isfinite(temps[slot]):
            book.temperature_sum[r] += temps[slot]
            book.temperature_count[r] += 1
    reasons = monitor.check(state)
    if not any(reasons):
        return active, state
    for slot, reason in enumerate(reasons):
        if reason is not None:
            r = active[slot]
            book.collapse_time[r] = time_ps
            book.reason[r] = reason
            if writers is not None:
                writers.close_replica(r)
    keep = torch.tensor([reason is None for reason in reasons], device=state.positions.device)
    active = [r for r, reason in zip(active, reasons, strict=True) if reason is None]
    atom_keep = keep[state.structure_index]
    state = state.select(keep)
    integ.select(keep)
    monitor.set_active(active)
    forces.set_system(forces.numbers[atom_keep], state.structure_index, forces.cell[keep], forces.pbc[keep])
    return active, state


def _clock() -> float:
    return time.perf_counter()


def _validate(settings: dict) -> None:
    for key in ("temperature", "time", "timestep"):
        if not settings[key] > 0:
            raise BoltzmatchError(f"--{key} must be positive, got {settings[key]}")
    for key in ("replicas", "interval", "check_interval"):
        if settings[key] < 1:
            raise BoltzmatchError(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")


def _record(step: int, time_ps: float, state: MDState, active: list[int], integ, writers, thermo) -> None:
    """Write a frame of every active replica and its thermo line."""
    if not active:
        return
    kinetic = state.kinetic_energy()
    temperature = state.temperature()
    conserved = integ.conserved_energy(state) if hasattr(integ, "conserved_energy") else state.energy + kinetic
    columns = [x.tolist() for x in (temperature, state.energy, kinetic, state.energy + kinetic, conserved)]
    thermo.write([(step, time_ps, r, *(c[slot] for c in columns)) for slot, r in enumerate(active)])
    if writers is not None:
        counts = torch.bincount(state.structure_index, minlength=len(active)).tolist()
        blocks = torch.split(state.positions.detach().cpu(), counts)
        for slot, r in enumerate(active):
            writers.write(r, blocks[slot].numpy(), {"time_ps": time_ps, "replica": r,
                                                    "model_energy": columns[1][slot],
                                                    "temperature": columns[0][slot]})


def _checkpoint(path: Path, step, state, integ, generator, active, book, settings, writers, thermo, wall) -> None:
    from ..utils.atomic import save_torch

    save_torch({
        "step": step, "settings": settings, "active": list(active), "wall_seconds": wall,
        "state": {k: getattr(state, k) for k in ("positions", "velocities", "forces", "energy", "masses",
                                                   "structure_index", "kT", "dof")},
        "integrator": integ.state_dict(), "generator": generator.get_state(),
        "progress": {"collapse_time": book.collapse_time, "reason": book.reason,
                     "temperature_sum": book.temperature_sum, "temperature_count": book.temperature_count},
        "trajectory_offsets": writers.offsets() if writers is not None else {},
        "trajectory_frames": writers.frames if writers is not None else [],
        "thermo_offset": thermo.offset(),
    }, path)


def _summary(book: _Progress, settings: dict, model_name: str, n_steps: int, steps: int, dt_ps: float,
             complete: bool, wall: float, rate: float, timing: dict) -> dict:
    """``timing`` (this process's loop only): seconds in the loop, in the model's forward and backward,
    in neighbour searches, their count, and the share of the loop spent outside the model."""
    simulated = steps * dt_ps
    collapsed = ~np.isnan(book.collapse_time)
    # a replica that never collapsed counts with the full length (or the time reached so far)
    ttc = np.where(collapsed, book.collapse_time, simulated)
    count = book.temperature_count.sum()
    return {
        "model": model_name,
        "complete": bool(complete),
        "replicas": int(len(ttc)),
        "temperature": settings["temperature"],
        "integrator": settings["integrator"],
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
        "mean_temperature_per_replica": [float(s / c) if c else float("nan")
                                         for s, c in zip(book.temperature_sum, book.temperature_count, strict=True)],
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
        ["median time to collapse (ps)", summary["median_time_to_collapse_ps"]],
        ["min / max time to collapse (ps)", f"{ttc.min():.3f} / {ttc.max():.3f}"],
        ["mean temperature (K)", summary["mean_temperature"]],
        ["replica-steps per second", summary["replica_steps_per_second"]],
        ["share of a step outside the model", f"{100 * summary['timing']['outside_model_fraction']:.1f}%"
         if "timing" in summary else "–"],
        ["filters", summary.get("timing", {}).get("filters", "exact")],
        ["wall time (s)", summary["wall_seconds"]],
        ["complete", summary["complete"]],
    ]
    return format_table(rows, title=title)
