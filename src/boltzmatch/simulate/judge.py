"""``boltzmatch stability``: judge any trajectory (boltzmatch's, ASE's, a LAMMPS dump) by the collapse
criterion MD uses, against reference frames that were first judged by it themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ..data import read_structures
from ..data.readers import FORMATS
from ..errors import BoltzmatchError
from ..utils.table import format_table
from .graphs import DEFAULT_PERSIST_FS
from .rdf_rule import DEFAULT_MAX_RDF_DEVIATION, DEFAULT_RDF_WINDOW_FS
from .stability import AUTO, BondReference, StabilityMonitor, resolve_criterion

#: LAMMPS dumps hold atom types, not elements: the reference's first frame names them, atom by atom
LAMMPS_SUFFIXES = (".lammpstrj", ".dump")


def read_trajectory(path: str | Path, reference: list[Atoms]) -> list[Atoms]:
    """Frames of a trajectory file: any structure file boltzmatch reads, or a LAMMPS text dump (sorted by
    atom id; elements, and for a molecule the open boundaries, from the reference's first frame: write
    unwrapped coordinates, ``xu yu zu``, for a molecule that crosses the box)."""
    path = Path(path)
    if path.suffix.lower() not in LAMMPS_SUFFIXES:
        return read_structures(path)
    from ase.io import read

    if not path.is_file():
        raise BoltzmatchError(f"{path}: no such file")
    try:
        frames = read(path, index=":", format="lammps-dump-text")
    except Exception as exc:  # noqa: BLE001  (ASE's parser raises many kinds)
        raise BoltzmatchError(f"{path}: not a LAMMPS text dump ({type(exc).__name__}: {exc})") from None
    numbers = reference[0].numbers
    for frame in frames:
        if len(frame) != len(numbers):
            raise BoltzmatchError(f"{path}: frames of {len(frame)} atoms, the reference has {len(numbers)}")
        frame.numbers = numbers
        if not reference[0].pbc.any():  # a molecule in LAMMPS's box: judged as the molecule it is
            frame.pbc, frame.cell = reference[0].pbc, reference[0].cell
    return frames


def _times(frames: list[Atoms], frame_fs: float | None, name: str = "trajectory") -> np.ndarray:
    """Frame times in ps: recorded ``time_ps`` (boltzmatch's trajectories and reference data), else ``frame_fs``
    apart. Times that go back mean several trajectories in one file: an error."""
    recorded = [a.info.get("time_ps") for a in frames]
    if all(t is not None for t in recorded):
        times = np.asarray(recorded, dtype=float)
        back = np.flatnonzero(np.diff(times) < 0)
        if back.size:
            raise BoltzmatchError(f"{name}: time_ps goes back at frame {back[0] + 1} ({times[back[0]]:g} → "
                                  f"{times[back[0] + 1]:g} ps): several trajectories in one file; judge one at a time")
        return times
    if frame_fs is None:
        raise BoltzmatchError("the frames record no time_ps: pass --frame-fs, the fs between frames")
    return np.arange(len(frames)) * frame_fs / 1000.0


def judge_trajectory(trajectory: str | Path, reference: str | Path, *, criterion: str = AUTO,
                     max_deviation: float = 0.5, persist: float = DEFAULT_PERSIST_FS,
                     frame_fs: float | None = None, rdf_window: float = DEFAULT_RDF_WINDOW_FS,
                     max_rdf_deviation: float = DEFAULT_MAX_RDF_DEVIATION) -> dict:
    """The first collapse of ``trajectory`` by ``criterion`` against the ``reference`` frames (see
    :mod:`.stability`; ``max_deviation`` Å, ``persist`` fs; ``rdf_window`` fs and ``max_rdf_deviation`` for
    ``rdf``), or none: the frame where the criterion fires (as MD dates it) and the frame where the
    non-visited graph began (``onset_frame``). Times in ps from the frames' ``time_ps`` or ``frame_fs``
    apart. Also the reference's own judgement (``reference_check``). ``auto``: ``rdf`` for a crystal or surface,
    ``graph`` for a molecule (:func:`.stability.resolve_criterion`, on the reference frames)."""
    resolve_criterion(criterion, [], str(reference))  # an unknown name fails before any file is read
    reference_frames = read_structures(reference)
    criterion = resolve_criterion(criterion, reference_frames, str(reference))
    frames = read_trajectory(trajectory, reference_frames)
    bond_reference = BondReference(reference_frames, str(reference))
    times = _times(frames, frame_fs, str(trajectory))
    monitor = StabilityMonitor([frames[0]], bond_reference, max_deviation=max_deviation, criterion=criterion,
                               persist=persist, rdf_window=rdf_window, max_rdf_deviation=max_rdf_deviation)
    result = {"trajectory": str(trajectory), "reference": str(reference), "criterion": criterion,
              "max_deviation": float(max_deviation), "persist_fs": float(persist), "frames": len(frames),
              "simulated_ps": float(times[-1] - times[0]) if len(times) else 0.0, "collapsed": False,
              "collapse_frame": None, "collapse_time_ps": None, "onset_frame": None, "onset_time_ps": None,
              "detail": None,
              "reference_check": bond_reference.check_reference(criterion, max_deviation, monitor.rdf)}
    if criterion == "rdf":
        result.update(rdf_window_fs=float(rdf_window), max_rdf_deviation=float(max_rdf_deviation))
    onset_frame: int | None = None
    for index, (frame, time_ps) in enumerate(zip(frames, times, strict=True)):
        positions = torch.as_tensor(frame.positions, dtype=torch.float64)
        cells = torch.as_tensor(np.asarray(frame.cell), dtype=torch.float64)[None] if frame.pbc.any() else None
        reason, key = monitor.structure_reasons(positions, float(time_ps), cells)[0]
        if reason is None and monitor.onset.get(0) is None:
            onset_frame = None
        elif onset_frame is None:
            onset_frame = index
        if reason is not None:
            graphs = monitor.graphs[0]
            detail = (graphs.describe(key) if reason == "graph" else monitor.rdf.describe(0) if reason == "rdf" else
                      f"a bond {monitor.max_bond_deviation(positions, cells).item():.2f} Å from its reference mean")
            onset = onset_frame if reason == "graph" else index
            result.update(collapsed=True, collapse_frame=index, collapse_time_ps=float(time_ps), onset_frame=onset,
                          onset_time_ps=float(times[onset]), detail=detail)
            break
    return result


def _criterion_text(result: dict) -> str:
    if result["criterion"] == "rdf":
        return (f"rdf (h(r) of {result['rdf_window_fs']:g} fs beyond {result['max_rdf_deviation']:g} of the "
                "reference's, ∫|h − h_ref| dr)")
    return (f"{result['criterion']} (bonds break {result['max_deviation']:g} Å beyond their mean"
            + (f", graph changes last {result['persist_fs']:g} fs)" if result["criterion"] == "graph" else ")"))


def format_stability(result: dict) -> str:
    """The table ``boltzmatch stability`` prints."""
    rows = [["trajectory", result["trajectory"]], ["reference", result["reference"]],
            ["criterion", _criterion_text(result)],
            ["frames (ps)", f"{result['frames']} ({result['simulated_ps']:.3f})"],
            ["collapsed", "yes" if result["collapsed"] else "no"]]
    if result["collapsed"]:
        rows += [["first collapse: frame (ps)", f"{result['collapse_frame']} ({result['collapse_time_ps']:.4f})"],
                 ["it began at frame (ps)", f"{result['onset_frame']} ({result['onset_time_ps']:.4f})"],
                 ["what changed", result["detail"]]]
    rows.append(["reference judged by the criterion", "; ".join(result["reference_check"]) or "no finding"])
    return format_table(rows, title="Stability")


__all__ = ["FORMATS", "format_stability", "judge_trajectory", "read_trajectory"]
