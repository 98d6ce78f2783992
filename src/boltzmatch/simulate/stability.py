"""Live stability checks of MD replicas: the collapse criterion, non-finite values, runaway temperature.

Criteria (``CRITERIA``; ``auto``, the default, picks one by :func:`resolve_criterion`):

* ``graph`` (``auto``'s choice for molecules, :mod:`.graphs`): a molecule collapses when its bond graph becomes one the
  reference frames never visit (up to relabelling atoms of the same element) for ``persist`` fs; a
  proton moving to the other oxygen of malonaldehyde is chemistry, a broken C–C bond is a collapse. A
  molecule in a periodic box is judged by its graph too (minimum-image distances); extended structures
  (crystals, surfaces) use the bond rule.
* ``rdf`` (Fu et al.'s rule for systems without fixed bonds, ``auto``'s choice for crystals and surfaces,
  :mod:`.rdf_rule`): the h(r) of a replica's
  last ``rdf_window`` fs differs from the reference's by more than ``max_rdf_deviation`` (∫|h − h_ref| dr).
* ``bond`` (Fu et al., arXiv 2210.07237): bonds come from ASE's natural cutoffs on the first reference
  frame of each molecule; a replica collapses at the first check where any bond length deviates by more
  than ``max_deviation`` (Å, default 0.5) from that bond's mean over the reference frames.

:meth:`BondReference.check_reference` judges the reference frames by a criterion before anything is
judged against them (the bond rule fires on reference trajectories with proton transfer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from ..data.geometry import Bonds, bond_lengths, composition_key, find_bonds, group_by_composition, is_extended
from ..errors import BoltzmatchError
from .graphs import DEFAULT_PERSIST_FS, MoleculeGraphs
from .integrators import MDState
from .rdf_rule import DEFAULT_MAX_RDF_DEVIATION, DEFAULT_RDF_WINDOW_FS, RdfWatch

REASONS = ("graph", "bond", "rdf", "non-finite", "temperature")
CRITERIA = ("graph", "bond", "rdf")
#: the default: ``graph`` for molecules, ``rdf`` for crystals and surfaces (:func:`resolve_criterion`)
AUTO = "auto"
#: bonds a reference-check line names before it counts the rest
NAMED_BONDS = 6


def resolve_criterion(criterion: str, structures: Sequence[Atoms], source: str = "structures") -> str:
    """``criterion`` itself, or for ``auto`` the criterion that fits ``structures``: ``rdf`` when their bonds run
    through the periodic boundaries (crystals, surfaces: atoms there have neighbours, not fixed bonds, the bond
    rule fires on the reference itself, and Fu et al. judge such systems by h(r); :func:`.is_extended`),
    ``graph`` when they do not (molecules, also in a periodic box, judged by minimum-image distances).
    A mix of the two must name a criterion."""
    if criterion != AUTO:
        if criterion not in CRITERIA:
            raise BoltzmatchError(f"--criterion must be one of {', '.join((AUTO, *CRITERIA))}, got {criterion!r}")
        return criterion
    groups = group_by_composition(structures)
    extended = [is_extended(frames[0]) for frames in groups.values()]
    if all(extended):
        return "rdf"
    if not any(extended):
        return "graph"
    raise BoltzmatchError(f"{source}: {sum(extended)} of {len(extended)} systems are extended (bonded through "
                          "their periodic boundaries) and the rest are molecules; pass --criterion graph, bond or rdf")


class BondReference:
    """Bonds and their mean reference lengths (Å) for every molecule (composition) in a data set."""

    def __init__(self, reference: Sequence[Atoms], source: str = "reference"):
        groups = group_by_composition(reference)
        self.groups = groups
        self._graphs: dict[tuple, MoleculeGraphs] = {}
        self._extended: dict[tuple[int, ...], bool] = {}
        self.source = source
        self.bonds: dict[tuple[int, ...], Bonds] = {}
        self.mean_length: dict[tuple[int, ...], np.ndarray] = {}
        for key, frames in groups.items():
            bonds = find_bonds(frames[0])
            self.bonds[key] = bonds
            # a molecule in a box may be wrapped differently frame to frame: its bonds by the minimum image
            self.mean_length[key] = self.lengths(key, frames).mean(axis=0)

    def lengths(self, key: tuple[int, ...], frames: Sequence[Atoms]) -> np.ndarray:
        """(n_frames, n_bonds) lengths (Å) of the reference bonds of composition ``key`` in ``frames``."""
        return bond_lengths(frames, self.bonds[key], minimum_image=not self.extended(key))

    def for_structure(self, atoms: Atoms) -> tuple[Bonds, np.ndarray]:
        key = composition_key(atoms)
        if key not in self.bonds:
            raise BoltzmatchError(
                f"{self.source}: has no frames of {atoms.get_chemical_formula()} (in this atom order); "
                "the bond criterion needs reference frames of every simulated molecule"
            )
        return self.bonds[key], self.mean_length[key]

    def extended(self, key: tuple[int, ...]) -> bool:
        """Whether the structures of composition ``key`` are bonded through their periodic boundaries
        (:func:`~boltzmatch.data.geometry.is_extended` of the first reference frame)."""
        if key not in self._extended:
            self._extended[key] = is_extended(self.groups[key][0], self.bonds[key])
        return self._extended[key]

    def graphs_for(self, atoms: Atoms, max_deviation: float) -> MoleculeGraphs | None:
        """The graph classes the reference visits for this molecule (also in a periodic box); None for extended
        structures (crystals, surfaces), which the bond rule judges under the graph criterion."""
        self.for_structure(atoms)
        if self.extended(composition_key(atoms)):
            return None
        key = (composition_key(atoms), float(max_deviation))
        if key not in self._graphs:
            self._graphs[key] = MoleculeGraphs(self.groups[key[0]], max_deviation)
        return self._graphs[key]

    def check_reference(self, criterion: str = "graph", max_deviation: float = 0.5,
                        rdf: RdfWatch | None = None) -> list[str]:
        """What the reference frames do that the criterion would call a collapse (bond rule: which bonds, in
        how many frames, from which frame; h(r) rule, with ``rdf``'s settings: which tenths of the reference
        differ from the whole by more than its limit), or, for the graph criterion, the graph changes they make
        (none of them a collapse: the reference defines what is visited). One line per finding."""
        from ase.data import chemical_symbols

        lines = []
        for key, frames in self.groups.items():
            formula = frames[0].get_chemical_formula()
            if criterion == "rdf":
                lines += _check_reference_rdf(self.source, formula, frames, rdf)
                continue
            if criterion == "bond" or self.extended(key):
                deviation = np.abs(self.lengths(key, frames) - self.mean_length[key])
                bad = deviation > max_deviation
                if bad.any():
                    numbers, bonds = frames[0].numbers, self.bonds[key]
                    names = [f"{chemical_symbols[numbers[a]]}{a}–{chemical_symbols[numbers[b]]}{b}"
                             for a, b in zip(bonds.i[bad.any(0)], bonds.j[bad.any(0)], strict=True)]
                    first = int(np.argmax(bad.any(1)))
                    more = f" and {len(names) - NAMED_BONDS} more" if len(names) > NAMED_BONDS else ""
                    lines.append(f"{self.source}: {formula}: the reference itself breaks the bond rule in "
                                 f"{int(bad.any(1).sum())} of {len(frames)} frames from frame {first} "
                                 f"({', '.join(names[:NAMED_BONDS])}{more} beyond {max_deviation:g} Å of their "
                                 "mean)")
                continue
            graphs = self.graphs_for(frames[0], max_deviation)
            moved = [i for i, c in enumerate(graphs.frame_class) if c != 0]
            if moved:
                lines.append(f"{self.source}: {formula}: the reference visits {len(graphs.classes)} bond graphs; "
                             f"{len(moved)} of {len(frames)} frames, from frame {moved[0]}, are not the first "
                             f"frame's (not collapses: the reference visits them)")
        return lines


def _check_reference_rdf(source: str, formula: str, frames: Sequence[Atoms], rdf: RdfWatch) -> list[str]:
    """The h(r) rule on the reference itself: each tenth of its frames (at least 20 frames) against the whole."""
    size = max(20, len(frames) // 10)
    chunks = [frames[k:k + size] for k in range(0, len(frames) - size + 1, size)]
    whole = rdf.histogram(frames)
    deviation = [rdf.deviation(rdf.histogram(chunk), whole) for chunk in chunks]
    bad = [k for k, d in enumerate(deviation) if d > rdf.max_deviation]
    if not bad:
        return []
    return [f"{source}: {formula}: {len(bad)} of {len(chunks)} stretches of {size} reference frames have an h(r) "
            f"beyond the limit {rdf.max_deviation:g} from the whole reference's (largest {max(deviation):.3f}, "
            f"from frame {bad[0] * size})"]


class StabilityMonitor:
    """Checks all active replicas at once; :meth:`check` returns a reason per replica or None.

    ``max_temperature`` (K) stops a replica whose instantaneous temperature exceeds it; ``rdf_window`` (fs) and
    ``max_rdf_deviation`` are the ``rdf`` criterion's.
    """

    def __init__(self, structures: Sequence[Atoms], reference: BondReference, *, max_deviation: float = 0.5,
                 max_temperature: float = float("inf"), criterion: str = "graph", persist: float = DEFAULT_PERSIST_FS,
                 rdf_window: float = DEFAULT_RDF_WINDOW_FS, max_rdf_deviation: float = DEFAULT_MAX_RDF_DEVIATION):
        if criterion not in CRITERIA:
            raise BoltzmatchError(f"unknown criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
        self.max_deviation = float(max_deviation)
        self.max_temperature = float(max_temperature)
        self.criterion, self.persist_ps = criterion, float(persist) / 1000.0
        self.per_replica = [reference.for_structure(a) for a in structures]
        self.graphs = [reference.graphs_for(a, max_deviation) if criterion == "graph" else None for a in structures]
        self.rdf = (RdfWatch(structures, [a for frames in reference.groups.values() for a in frames],
                             window=rdf_window, max_deviation=max_rdf_deviation) if criterion == "rdf" else None)
        self.onset: dict[int, float] = {}  # replica → time (ps) its present non-visited graph began
        self.collapse_times: list[float] = []
        self.cells = [np.asarray(a.cell) for a in structures]
        self.counts = [len(a) for a in structures]
        self.set_active(list(range(len(structures))))

    def set_active(self, replica_ids: Sequence[int]) -> None:
        """Rebuild the flat bond tables for the active replicas, in this order."""
        i_all, j_all, offset_all, shift_all, ref_all, owner = [], [], [], [], [], []
        offset = 0
        for slot, r in enumerate(replica_ids):
            bonds, ref = self.per_replica[r]
            i_all.append(bonds.i + offset)
            j_all.append(bonds.j + offset)
            offset_all.append(np.asarray(bonds.offsets, dtype=float).reshape(-1, 3))
            shift_all.append(bonds.offsets @ self.cells[r])
            ref_all.append(ref)
            owner.append(np.full(len(bonds), slot))
            offset += self.counts[r]
        self.n_active = len(replica_ids)
        self.active_ids = list(replica_ids)
        self._rows: list | None = None  # :meth:`_molecule_rows`, for these replicas
        self._rows_device: torch.device | None = None

        def cat(parts, dtype):
            return torch.as_tensor(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

        self.i = cat(i_all, torch.long)
        self.j = cat(j_all, torch.long)
        self.shift = torch.as_tensor(np.concatenate(shift_all) if shift_all else np.zeros((0, 3)),
                                     dtype=torch.float64).reshape(-1, 3)
        self.unit_offsets = torch.as_tensor(np.concatenate(offset_all) if offset_all else np.zeros((0, 3)),
                                            dtype=torch.float64).reshape(-1, 3)
        self.ref = cat(ref_all, torch.float64)
        self.owner = cat(owner, torch.long)

    def max_bond_deviation(self, positions: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
        """(n_active,) largest ``|bond length − reference mean|`` of each replica, Å; ``cells`` (n_active, 3, 3) Å
        where a barostat has changed them (default: the starting cells)."""
        if cells is None:
            shift = self.shift.to(positions)
        else:
            owner = self.owner.to(positions.device)
            shift = torch.einsum("bi,bij->bj", self.unit_offsets.to(positions), cells.to(positions)[owner])
        vec = positions[self.j] - positions[self.i] + shift
        dev = (vec.norm(dim=-1) - self.ref.to(positions)).abs()
        out = torch.zeros(self.n_active, dtype=positions.dtype, device=positions.device)
        return out.scatter_reduce(0, self.owner.to(positions.device), dev, reduce="amax", include_self=True)

    def graph_keys(self, positions: torch.Tensor, cells: torch.Tensor | None = None) -> list[bytes | None]:
        """The bond graph of each active replica (None where the bond rule applies); ``cells`` (n_active, 3, 3) Å
        where a barostat changed them."""
        keys: list[bytes | None] = [None] * self.n_active
        for graphs, slots, rows in self._molecule_rows(positions.device):
            # one gather for all replicas of a molecule (a slice each was one kernel per replica on a GPU)
            stacked = positions.index_select(0, rows).view(len(slots), -1, 3).double()
            boxes = None if cells is None else cells[torch.as_tensor(slots, device=cells.device)]
            for slot, key in zip(slots, graphs.keys(stacked, boxes), strict=True):
                keys[slot] = key
        return keys

    def _molecule_rows(self, device: torch.device) -> list[tuple[MoleculeGraphs, list[int], torch.Tensor]]:
        """Per molecule under the graph rule: its graphs, its active slots and their atoms' rows in the flat
        positions (on ``device``); worked out once per set of active replicas."""
        if self._rows is None or self._rows_device != device:
            starts = np.cumsum([0] + [self.counts[r] for r in self.active_ids])
            by_molecule: dict[int, list[int]] = {}
            for slot, r in enumerate(self.active_ids):
                if self.graphs[r] is not None:
                    by_molecule.setdefault(id(self.graphs[r]), []).append(slot)
            self._rows = []
            for slots in by_molecule.values():
                graphs = self.graphs[self.active_ids[slots[0]]]
                rows = (starts[slots][:, None] + np.arange(len(graphs.numbers))).reshape(-1)
                self._rows.append((graphs, slots, torch.as_tensor(rows, device=device)))
            self._rows_device = device
        return self._rows

    def structure_reasons(self, positions: torch.Tensor, time_ps: float | None = None,
                          cells: torch.Tensor | None = None) -> list[tuple[str | None, bytes | None]]:
        """Per active replica: 'graph' or 'bond' where the criterion says it collapsed (else None), and
        its bond graph (None under the bond rule). ``time_ps`` measures how long a non-visited graph has
        lasted; without it a graph change counts at once. :attr:`collapse_times` then holds the time (ps) of
        this check for every active replica (a collapse is dated when the criterion fires, so a trajectory
        holds nothing after it), :attr:`onset` when each replica's present non-visited graph began. ``cells``
        (n_active, 3, 3) Å: the replicas' present cells, where a barostat changes them."""
        now = 0.0 if time_ps is None else float(time_ps)
        self.collapse_times = [now] * self.n_active
        if self.rdf is not None:
            flags = self.rdf.observe_all(self.active_ids, positions, [self.counts[r] for r in self.active_ids], now,
                                         cells)
            return [("rdf" if flag else None, None) for flag in flags]
        deviation = self.max_bond_deviation(positions, cells).tolist()
        keys = self.graph_keys(positions, cells) if self.criterion == "graph" else [None] * self.n_active
        out: list[tuple[str | None, bytes | None]] = []
        for slot, r in enumerate(self.active_ids):
            key = keys[slot]
            if key is None:
                out.append(("bond" if deviation[slot] > self.max_deviation else None, None))
            elif self._graph_collapsed(r, key, now, time_ps is None):
                out.append(("graph", key))
            else:
                out.append((None, key))
        return out

    def check(self, state: MDState, time_ps: float | None = None) -> list[str | None]:
        """The reason each active replica must stop ('non-finite', 'graph' or 'bond', 'temperature'), or
        None (see :meth:`structure_reasons` for ``time_ps``)."""
        finite_atoms = (torch.isfinite(state.positions).all(-1) & torch.isfinite(state.velocities).all(-1)
                        & torch.isfinite(state.forces).all(-1))
        bad_atoms = state.per_structure((~finite_atoms).double())
        nonfinite = (bad_atoms > 0) | ~torch.isfinite(state.energy)
        structural = self.structure_reasons(torch.nan_to_num(state.positions), time_ps, state.cell)
        temperature = state.temperature().tolist()
        reasons: list[str | None] = []
        for bad, (reason, _), temp in zip(nonfinite.tolist(), structural, temperature, strict=True):
            if bad:
                reasons.append("non-finite")
            elif reason is not None:
                reasons.append(reason)
            elif temp > self.max_temperature:
                reasons.append("temperature")
            else:
                reasons.append(None)
        return reasons

    def state_dict(self) -> dict:
        """What the checks remember between them (graph onsets, h(r) windows), for a checkpoint."""
        return {"onset": dict(self.onset), "rdf": None if self.rdf is None else self.rdf.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.onset = {int(r): float(t) for r, t in state["onset"].items()}
        if self.rdf is not None and state.get("rdf") is not None:
            self.rdf.load_state_dict(state["rdf"])

    def _graph_collapsed(self, replica: int, key: bytes, now: float, at_once: bool) -> bool:
        graphs = self.graphs[replica]
        if key == graphs.start or graphs.visited(key):
            self.onset.pop(replica, None)
            return False
        began = self.onset.setdefault(replica, now)
        return at_once or now - began >= self.persist_ps - 1e-12
