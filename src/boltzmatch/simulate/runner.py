"""``simulate``: batched MD of many replicas with a trained model, with live stability checks.

One model call per step evaluates every replica that is still stable. A replica stops when it
collapses (by the collapse criterion), turns non-finite or overheats; its trajectory up to that point is
kept and the others go on. Output in ``out``:

- ``trajectories/replica_NNN.xyz`` (or ``.traj``): a frame every ``interval`` steps;
- ``thermo.csv``: time (ps), temperature (K), potential, kinetic, total and conserved energy (eV);
- ``summary.json``: rewritten atomically while running (``complete: false``) and at the end;
- ``checkpoint.pt``: every ``checkpoint_seconds``; ``resume=True`` continues a killed run.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.data import atomic_masses

from ..data import read_structures
from ..errors import BoltzmatchError
from ..runs.run_dir import load
from ..units import GPA_PER_EV_A3
from ..utils.atomic import atomic_write_text, save_torch
from ..utils.device import device_name, resolve_device
from ..utils.progress import progress_bar
from ..utils.stopping import DeferredStop
from .barostat import (
    DEFAULT_BAROSTAT_TAU,
    DEFAULT_COMPRESSIBILITY,
    CellRescaling,
    check_structures,
    fixed_volume_reference,
    instantaneous_pressure,
)
from .forces import NEIGHBOR_SKIN, ModelForces
from .graphs import DEFAULT_PERSIST_FS
from .integrators import MDState, make_integrator, maxwell_boltzmann, remove_drift, update_forces
from .memory import auto_replicas
from .output import ThermoLog, TrajectoryWriters
from .rdf_rule import DEFAULT_MAX_RDF_DEVIATION, DEFAULT_RDF_WINDOW_FS
from .settings import LEGACY_SETTINGS, SETTINGS_KEYS, run_settings
from .stability import AUTO, BondReference, StabilityMonitor, resolve_criterion
from .summary import ReplicaBook, format_simulation, summarize_simulation

__all__ = ["NEIGHBOR_SKIN", "SETTINGS_KEYS", "ModelForces", "choose_starts", "format_simulation", "simulate"]


def choose_starts(structures: list[Atoms], replicas: int, seed: int) -> np.ndarray:
    """Indices of the starting frames: without replacement when there are enough frames."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(structures), size=replicas, replace=replicas > len(structures))


def simulate(
    run_dir: str | Path | torch.nn.Module,
    start,
    *,
    out: str | Path,
    temperature: float = 500.0,
    replicas: int | str = 32,
    time: float = 10.0,  # noqa: A002  (the CLI flag is --time)
    timestep: float = 0.5,
    integrator: str = "langevin",
    friction: float = 0.01,
    tau: float = 100.0,
    interval: int = 20, check_interval: int = 10, seed: int = 0,
    format: str = "extxyz",  # noqa: A002
    reference=None,
    max_deviation: float = 0.5,
    max_temperature: float | None = None,
    write_trajectories: bool = True,
    checkpoint_seconds: float = 60.0,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    data_options: dict | None = None,
    skin: float = NEIGHBOR_SKIN, exact_filters: bool = False, compile_forces: bool = False, cuda_graphs: bool = False,
    criterion: str = AUTO,
    persist: float = DEFAULT_PERSIST_FS,
    rdf_window: float = DEFAULT_RDF_WINDOW_FS,
    max_rdf_deviation: float = DEFAULT_MAX_RDF_DEVIATION,
    pressure: float | None = None, barostat_tau: float = DEFAULT_BAROSTAT_TAU,
    compressibility: float = DEFAULT_COMPRESSIBILITY, pressure_coupling: str = "isotropic",
) -> dict:
    """Run ``replicas`` copies of MD with the model and return the summary (also ``out/summary.json``).

    Parameters
    ----------
    run_dir, start
        A run directory, a MACE/SchNetPack/NequIP model file, or an ``EnergyModel`` itself; structures (path
        or ``list[Atoms]``) to draw starting frames from, with ``seed``.
    temperature, time, timestep
        Thermostat and initial-velocity temperature, K; simulated time per replica, ps; timestep, fs.
    integrator
        ``langevin`` (BAOAB, ``friction`` in 1/fs), ``verlet`` (NVE) or ``nose-hoover`` (``tau`` in fs).
    interval, check_interval, reference
        Steps between written frames / thermo lines, and between stability checks; structures whose mean bond
        lengths define collapse (default: ``start``).
    criterion, max_deviation, persist, rdf_window, max_rdf_deviation
        What counts as a collapse (:mod:`.stability`): ``auto`` (default), ``graph`` for molecules and ``rdf``
        for crystals and surfaces (bonded through the periodic boundaries); ``graph``, a bond graph the
        reference never visits lasting ``persist`` fs (reference bonds break ``max_deviation`` Å beyond their
        mean); ``bond``, Fu et al.'s rule: a bond ``max_deviation`` Å from its reference mean; ``rdf``, their
        rule for liquids and solids: h(r) of the last ``rdf_window`` fs ``max_rdf_deviation`` (∫|h − h_ref| dr)
        from the reference's.
    max_temperature, skin
        Instantaneous temperature (K) that counts as a runaway (default 5 × ``temperature``); Å added to the
        cutoff for the candidate pairs reused between steps (:class:`ModelForces`; 0: every step).
    pressure, barostat_tau, compressibility, pressure_coupling
        NPT: the pressure (GPa) the cells are rescaled to (stochastic cell rescaling, :mod:`.barostat`; crystals
        and other 3-D periodic structures, with ``langevin``); the barostat's relaxation time (fs) and the
        compressibility it assumes (1/GPa); which axes scale together: ``isotropic`` (default), ``semiisotropic``
        (x with y, z alone) or ``anisotropic`` (each alone; cells with vectors along x, y, z). None: NVT or NVE.
    device, replicas
        ``auto`` (CUDA when present), ``cpu``, ``cuda[:N]``; ``replicas="auto"``: as many as the GPU's memory holds.
    exact_filters, compile_forces, cuda_graphs
        SchNet's filters exactly, not from tables (~1e-5 eV/Å off); the model under ``torch.compile``; the force
        call replayed as a CUDA graph, molecules with every pair of their atoms as candidates (:class:`ModelForces`).

    Returns
    -------
    dict
        ``time_to_collapse_ps`` (per replica; the full length without collapse), ``median_time_to_collapse_ps``,
        ``mean_temperature`` (K, before collapse), the reasons, ``replica_steps_per_second``; under a barostat
        also ``mean_volume_A3``, ``mean_pressure_GPa`` and ``mean_cell_lengths_A`` (a, b, c).
    """
    out = Path(out)
    given = {key: value for key, value in locals().items() if key in SETTINGS_KEYS}
    settings = run_settings({**given, "replicas": 1 if replicas == "auto" else replicas})
    dev = resolve_device(device)
    model = load(run_dir, map_location=dev) if isinstance(run_dir, str | Path) else run_dir.to(dev)
    names = {"model": str(run_dir) if isinstance(run_dir, str | Path) else type(model).__name__}
    start_frames, names["start"] = _frames(start, "start structures", data_options)
    if not start_frames:
        raise BoltzmatchError(f"{names['start']}: no structures to start from")
    if replicas == "auto":  # as many as the GPU holds, by a memory model measured here (simulate/memory.py)
        settings["replicas"] = auto_replicas(model, start_frames, dev, stress=settings["pressure"] is not None)
    reference_frames, names["reference"] = ((start_frames, names["start"]) if reference is None else
                                            _frames(reference, "reference structures", data_options))
    picks = choose_starts(start_frames, settings["replicas"], settings["seed"])
    structures = [start_frames[i].copy() for i in picks]
    _fit_to_structures(settings, structures, names["start"])
    monitor, names["reference_check"] = _monitor(structures, reference_frames, names["reference"], settings)
    if settings["pressure"] is not None and settings["criterion"] == "rdf":
        names["reference_check"] += fixed_volume_reference(reference_frames, names["reference"], settings["pressure"])
    if hasattr(model, "check_elements"):
        model.check_elements(torch.as_tensor(np.concatenate([a.numbers for a in structures])))
    run = _Simulation(model, structures, monitor, settings, out, dev, write_trajectories=write_trajectories,
                      forces_options={"skin": skin, "exact_filters": exact_filters, "compile_forces": compile_forces,
                                      "cuda_graphs": cuda_graphs})
    _begin_or_resume(run, resume, names, picks)
    return run.run(names["model"], progress=progress, checkpoint_seconds=checkpoint_seconds)


def _begin_or_resume(run: _Simulation, resume: bool, names: dict, picks: np.ndarray) -> None:
    """Continue from ``out/checkpoint.pt`` (``resume``), or begin and write ``simulation.json`` (what started the
    run, with its settings) and, for the bond and rdf criteria, what they find in the reference itself."""
    out, settings = run.out, run.settings
    out.mkdir(parents=True, exist_ok=True)
    if resume and run.checkpoint_path.exists():
        run.restore(torch.load(run.checkpoint_path, weights_only=False, map_location=run.dev))
        return
    if resume:
        print(f"boltzmatch: no checkpoint in {out}; starting a new simulation")
    run.begin()
    atomic_write_text(out / "simulation.json", json.dumps(
        {"model": names["model"], "start": names["start"], "reference": names["reference"],
         "reference_check": names["reference_check"], "start_indices": picks.tolist(), **settings}, indent=2))
    if settings["criterion"] in ("bond", "rdf"):  # warnings, which --quiet (no progress bars) does not hide
        for line in names["reference_check"]:
            warnings.warn(line, stacklevel=1)


def _monitor(structures: list[Atoms], reference: list[Atoms], name: str, settings: dict
             ) -> tuple[StabilityMonitor, list[str]]:
    """The stability checks of the replicas, and what the criterion finds in the reference frames themselves."""
    bond_reference = BondReference(reference, name)
    monitor = StabilityMonitor(structures, bond_reference, max_deviation=settings["max_deviation"],
                               max_temperature=settings["max_temperature"], criterion=settings["criterion"],
                               persist=settings["persist"], rdf_window=settings["rdf_window"],
                               max_rdf_deviation=settings["max_rdf_deviation"])
    return monitor, bond_reference.check_reference(settings["criterion"], settings["max_deviation"], monitor.rdf)


def _fit_to_structures(settings: dict, structures: list[Atoms], name: str) -> None:
    """The settings that depend on the starting structures: the criterion ``auto`` resolves to (with a warning
    where the run is shorter than the rdf rule's window); a barostat needs cells periodic in every direction
    (along x, y and z where the axes scale apart)."""
    if settings["pressure"] is not None:
        check_structures(structures, name, settings["pressure_coupling"])
    settings["criterion"] = resolve_criterion(settings["criterion"], structures, name)
    if settings["criterion"] == "rdf" and settings["time"] * 1000.0 < settings["rdf_window"]:
        warnings.warn(f"--time {settings['time']:g} ps is shorter than the h(r) window of the rdf criterion "
                      f"({settings['rdf_window']:g} fs): no replica can be judged collapsed", stacklevel=1)


def _frames(source, default_name: str, data_options: dict | None) -> tuple[list[Atoms], str]:
    """Structures from a file (read with ``data_options``) or a list, and the name errors give them."""
    if isinstance(source, str | Path):
        return read_structures(source, **(data_options or {})), str(source)
    return list(source), default_name


class _Simulation:
    """The mutable state of one MD run: integrator, replicas still active, their bookkeeping and output."""

    def __init__(self, model, structures: list[Atoms], monitor: StabilityMonitor, settings: dict, out: Path,
                 dev: torch.device, *, write_trajectories: bool, forces_options: dict):
        self.structures, self.monitor, self.settings, self.out, self.dev = structures, monitor, settings, out, dev
        self.write_trajectories = write_trajectories
        self.checkpoint_path = out / "checkpoint.pt"
        self.n_steps = int(round(settings["time"] * 1000.0 / settings["timestep"]))
        self.dt_ps = settings["timestep"] / 1000.0
        self.generator = torch.Generator(device=dev).manual_seed(settings["seed"])
        barostat = None if settings["pressure"] is None else CellRescaling(
            settings["pressure"], tau=settings["barostat_tau"], compressibility=settings["compressibility"],
            coupling=settings["pressure_coupling"], generator=self.generator)
        self.integ = make_integrator(settings["integrator"], settings["timestep"], friction=settings["friction"],
                                     tau=settings["tau"], generator=self.generator, barostat=barostat)
        self.numbers = torch.as_tensor(np.concatenate([a.numbers for a in structures]), dtype=torch.long, device=dev)
        self.counts = torch.as_tensor([len(a) for a in structures], device=dev)
        self.structure_index = torch.repeat_interleave(torch.arange(len(structures), device=dev), self.counts)
        self.cell = torch.as_tensor(np.stack([np.asarray(a.cell) for a in structures]), dtype=torch.float64,
                                    device=dev)
        self.pbc = torch.as_tensor(np.stack([a.pbc for a in structures]), device=dev)
        self.forces = ModelForces(model, self.numbers, self.structure_index, self.cell, self.pbc, **forces_options)

    def begin(self) -> None:
        """Fresh replicas: start positions, Maxwell–Boltzmann velocities at the temperature, frame 0."""
        dev, n = self.dev, len(self.structures)
        positions = torch.as_tensor(np.concatenate([a.positions for a in self.structures]), dtype=torch.float64,
                                    device=dev)
        masses = torch.as_tensor(atomic_masses[self.numbers.cpu().numpy()], dtype=torch.float64, device=dev)[:, None]
        kT = torch.full((n,), units.kB * self.settings["temperature"], dtype=torch.float64, device=dev)
        dof = (3 * self.counts - (3 if self.integ.removes_drift else 0)).to(torch.float64).clamp(min=1)
        self.state = MDState(positions=positions, velocities=torch.zeros_like(positions),
                             forces=torch.zeros_like(positions), energy=torch.zeros(n, dtype=torch.float64, device=dev),
                             masses=masses, structure_index=self.structure_index, kT=kT, dof=dof)
        self.state.velocities = maxwell_boltzmann(masses[:, 0], kT[self.structure_index], self.generator)
        if self.integ.removes_drift:
            remove_drift(self.state)
        if self.settings["pressure"] is not None:  # the cells change: the state holds them, and the model's stress
            self.state.cell, self.state.stress = self.cell.clone(), torch.zeros_like(self.cell)
        update_forces(self.state, self.forces)
        self.active = list(range(n))
        self.book = ReplicaBook.empty(n, barostat=self.state.cell is not None)
        self.first_step, self.wall_before = 1, 0.0
        self.writers = (TrajectoryWriters(self.out / "trajectories", self.structures, self.settings["format"])
                        if self.write_trajectories else None)
        self.thermo = ThermoLog(self.out / "thermo.csv", barostat=self.state.cell is not None)
        _record(0, 0.0, self.state, self.active, self.integ, self.writers, self.thermo)

    def restore(self, ckpt: dict) -> None:
        """Continue from ``checkpoint.pt``; one-line error when it was written with other settings."""
        stored = {**LEGACY_SETTINGS, **ckpt["settings"]}
        if stored != self.settings:
            changed = sorted(k for k in self.settings if stored.get(k) != self.settings[k])
            raise BoltzmatchError(f"{self.checkpoint_path}: was written with other settings ({', '.join(changed)}); "
                                  "resume with the same ones or choose a new --out")
        self.state = MDState(**ckpt["state"])
        self.integ.load_state_dict(ckpt["integrator"])
        self.generator.set_state(ckpt["generator"])
        self.active = list(ckpt["active"])
        self.book = ReplicaBook(**ckpt["progress"])
        if "monitor" in ckpt:
            self.monitor.load_state_dict(ckpt["monitor"])
        self.first_step, self.wall_before = ckpt["step"] + 1, ckpt["wall_seconds"]
        self.writers = (TrajectoryWriters(self.out / "trajectories", self.structures, self.settings["format"],
                                          offsets=ckpt["trajectory_offsets"], frames=ckpt["trajectory_frames"])
                        if self.write_trajectories else None)
        self.thermo = ThermoLog(self.out / "thermo.csv", offset=ckpt["thermo_offset"],
                                barostat=self.state.cell is not None)
        keep = torch.zeros(len(self.structures), dtype=torch.bool, device=self.dev)
        keep[self.active] = True
        self.forces.set_system(self.numbers[keep[self.structure_index]], self.state.structure_index, self.cell[keep],
                               self.pbc[keep])
        self.monitor.set_active(self.active)

    def save_checkpoint(self, step: int, wall: float) -> None:
        writers = self.writers
        save_torch({
            "step": step, "settings": self.settings, "active": list(self.active), "wall_seconds": wall,
            "state": {k: getattr(self.state, k) for k in ("positions", "velocities", "forces", "energy", "masses",
                                                        "structure_index", "kT", "dof", "cell", "stress")},
            "integrator": self.integ.state_dict(), "generator": self.generator.get_state(),
            "progress": self.book.state_dict(),
            "trajectory_offsets": writers.offsets() if writers is not None else {},
            "trajectory_frames": writers.frames if writers is not None else [],
            "thermo_offset": self.thermo.offset(), "monitor": self.monitor.state_dict(),
        }, self.checkpoint_path)

    def _step(self, step: int) -> None:
        """One MD step of every active replica; checks, frames and thermo lines on their intervals."""
        self.integ.step(self.state, self.forces)
        self.replica_steps += len(self.active)
        self.steps_done += 1
        self.step_reached = step
        if step % self.settings["check_interval"] == 0 or step == self.n_steps:
            self.active, self.state = _check(step * self.dt_ps, self.state, self.active, self.monitor, self.integ,
                                             self.forces, self.writers, self.book)
            self.bar.set_postfix_str(f"stable {len(self.active)}/{len(self.structures)}")
        if step % self.settings["interval"] == 0:
            _record(step, step * self.dt_ps, self.state, self.active, self.integ, self.writers, self.thermo)
            now = _clock()
            if now - self.last_summary > 5.0:
                atomic_write_text(self.out / "summary.json", json.dumps(self.summary(False), indent=2))
                self.last_summary = now
            if now - self.last_checkpoint > self.checkpoint_seconds:
                self.save_checkpoint(step, self.wall_before + now - self.t0)
                self.last_checkpoint = now

    def summary(self, done: bool) -> dict:
        forces = self.forces
        loop = max(_clock() - self.t0, 1e-9)
        timing = {"loop_seconds": loop, "model_seconds": forces.model_seconds,
                  "neighbor_search_seconds": forces.search_seconds, "neighbor_searches": forces.searches,
                  "filters": forces.filters, "compiled": forces.compiled, "device": device_name(self.dev),
                  "cuda_graph_replays": forces.replays,
                  "outside_model_fraction": max(0.0, 1.0 - forces.model_seconds / loop) if self.steps_done else 0.0}
        return summarize_simulation(self.book, self.settings, self.model_name, self.n_steps,
                                    min(self.step_reached, self.n_steps), self.dt_ps, done,
                                    self.wall_before + _clock() - self.t0, self.replica_steps / loop, timing)

    def run(self, model_name: str, *, progress: bool, checkpoint_seconds: float) -> dict:
        """Step to the end (or until every replica stopped); Ctrl-C, SIGTERM and the app's Stop end the
        step first and checkpoint. Returns the summary, also written to ``summary.json``."""
        self.model_name, self.checkpoint_seconds = model_name, checkpoint_seconds
        self.forces.model_seconds = self.forces.search_seconds = 0.0  # time the loop only
        self.forces.searches = self.forces.replays = 0
        self.t0 = _clock()
        self.last_checkpoint, self.last_summary = self.t0, -float("inf")  # first summary at the first frame
        self.steps_done = self.replica_steps = 0
        self.step_reached = self.first_step - 1
        complete = at_step_boundary = False
        self.bar = progress_bar(total=self.n_steps, initial=self.first_step - 1, disable=not progress, unit="step",
                                desc="simulate", dynamic_ncols=True)
        self.bar.set_postfix_str(f"stable {len(self.active)}/{len(self.structures)}")
        stop = DeferredStop()
        try:
            with stop:
                for step in range(self.first_step, self.n_steps + 1):
                    if not self.active:
                        break
                    self._step(step)
                    self.bar.update(1)
                    if stop.requested:
                        at_step_boundary = True
                        raise KeyboardInterrupt
            complete = True
        except KeyboardInterrupt:
            # Ctrl-C and SIGTERM are deferred to the end of a step, so the state is consistent there;
            # an interrupt raised inside a step leaves the last periodic checkpoint as it was
            if at_step_boundary and self.steps_done:
                self.save_checkpoint(self.step_reached, self.wall_before + _clock() - self.t0)
            raise
        finally:
            self.bar.close()
            if self.writers is not None:
                self.writers.close()
            self.thermo.close()
            result = self.summary(complete)
            atomic_write_text(self.out / "summary.json", json.dumps(result, indent=2))
        if complete and self.checkpoint_path.exists():
            self.checkpoint_path.unlink()
        return result


def _check(time_ps, state, active, monitor, integ, forces, writers, book):
    """Record temperatures, stop failing replicas; returns the new active list and state."""
    temps = state.temperature().tolist()
    volumes, pressures, lengths = ((state.volume().tolist(), (instantaneous_pressure(state) * GPA_PER_EV_A3).tolist(),
                                    torch.linalg.vector_norm(state.cell, dim=-1).tolist())
                                   if state.cell is not None else (None, None, None))
    for slot, r in enumerate(active):
        if np.isfinite(temps[slot]):
            book.temperature_sum[r] += temps[slot]
            book.temperature_count[r] += 1
            if volumes is not None:
                book.volume_sum[r] += volumes[slot]
                book.pressure_sum[r] += pressures[slot]
                if book.lengths_sum is not None:
                    book.lengths_sum[r] += lengths[slot]
    reasons = monitor.check(state, time_ps)
    if not any(reasons):
        return active, state
    blocks = torch.split(state.positions.detach().cpu(), torch.bincount(state.structure_index).tolist())
    cells = [None] * len(reasons) if state.cell is None else list(state.cell.detach().cpu().numpy())
    temperature = state.temperature().tolist()
    for slot, reason in enumerate(reasons):
        if reason is not None:
            r = active[slot]
            book.collapse_time[r] = monitor.collapse_times[slot]
            book.reason[r] = reason
            if writers is not None:
                if reason != "non-finite":  # the frame the criterion fired on ends the trajectory: what broke
                    writers.write(r, blocks[slot].numpy(), {"time_ps": monitor.collapse_times[slot], "replica": r,
                                                            "model_energy": float(state.energy[slot]),
                                                            "temperature": temperature[slot], "collapse": reason},
                                  cells[slot])
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


def _record(step: int, time_ps: float, state: MDState, active: list[int], integ, writers, thermo) -> None:
    """Write a frame of every active replica and its thermo line."""
    if not active:
        return
    kinetic = state.kinetic_energy()
    temperature = state.temperature()
    conserved = integ.conserved_energy(state) if hasattr(integ, "conserved_energy") else state.energy + kinetic
    values = [temperature, state.energy, kinetic, state.energy + kinetic, conserved]
    if state.cell is not None:
        values += [state.volume(), instantaneous_pressure(state) * GPA_PER_EV_A3,
                   *torch.linalg.vector_norm(state.cell, dim=-1).unbind(-1)]
    columns = [x.tolist() for x in values]
    thermo.write([(step, time_ps, r, *(c[slot] for c in columns)) for slot, r in enumerate(active)])
    if writers is not None:
        counts = torch.bincount(state.structure_index, minlength=len(active)).tolist()
        blocks = torch.split(state.positions.detach().cpu(), counts)
        cells = [None] * len(active) if state.cell is None else list(state.cell.detach().cpu().numpy())
        for slot, r in enumerate(active):
            writers.write(r, blocks[slot].numpy(), {"time_ps": time_ps, "replica": r,
                                                    "model_energy": columns[1][slot],
                                                    "temperature": columns[0][slot]}, cells[slot])
