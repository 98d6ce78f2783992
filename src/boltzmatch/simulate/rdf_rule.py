"""Fu et al.'s h(r)-deviation rule (arXiv 2210.07237) for systems without fixed bonds (liquids, solids).

A replica collapses when the distance histogram h(r) of its last ``window`` fs of stability checks differs
from the reference's h(r) by more than ``max_deviation``, measured as ∫|h − h_ref| dr (dimensionless,
0 … 2; :func:`boltzmatch.analysis.metrics.histogram_mae` is the same number). Nothing is judged before a
replica has run one window. h(r) counts every atom pair up to ``r_max`` Å (minimum image in periodic cells).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from ..data.geometry import composition_key, group_by_composition, pair_distances

DEFAULT_RDF_WINDOW_FS = 1000.0
#: ∫|h − h_ref| dr beyond which a window's h(r) is a collapse. Measured on GFN2-xTB trajectories at 500 K
#: (1-ps windows of 200 frames 5 fs apart): a test trajectory's windows against itself reach 0.09
#: (malonaldehyde) and 0.06 (aspirin), against a separately seeded 1-ps training trajectory 0.14 and 0.09;
#: one H moved 2.5 Å out gives 0.33 in malonaldehyde but only 0.07 in aspirin, and the molecule stretched
#: by 15 % gives 0.70 and 0.53. The rule is for liquids and solids: on a molecule it sees gross failures
#: only, and the graph criterion is the one to use.
DEFAULT_MAX_RDF_DEVIATION = 0.25
R_MAX = 6.0
BINS = 120


def _histogram(distances: np.ndarray, r_max: float, bins: int) -> np.ndarray:
    return np.histogram(distances.ravel(), bins=bins, range=(0.0, r_max))[0].astype(np.float64)


def _mae(counts: np.ndarray, reference: np.ndarray) -> float:
    """∫|h − h_ref| dr of two count histograms, each normalised over every pair it counted."""
    total, ref_total = counts.sum(), reference.sum()
    if total == 0 or ref_total == 0:
        return 0.0 if total == ref_total else 2.0
    return float(np.abs(counts / total - reference / ref_total).sum())  # densities × width: the widths cancel


class RdfWatch:
    """The h(r) windows of every replica against the reference h(r) of its composition.

    ``structures`` are the replicas (their compositions pick the reference h(r)); ``reference`` the frames.
    Pairs beyond ``r_max`` fall outside every histogram alike, so a molecule whose atoms fly apart loses
    counts inside ``r_max``; each histogram is normalised by the pairs it counted in total (inside and out),
    and the pairs beyond ``r_max`` are one more bin.
    """

    def __init__(self, structures: Sequence[Atoms], reference: Sequence[Atoms], *,
                 window: float = DEFAULT_RDF_WINDOW_FS, max_deviation: float = DEFAULT_MAX_RDF_DEVIATION,
                 r_max: float = R_MAX, bins: int = BINS):
        self.window_ps, self.max_deviation = float(window) / 1000.0, float(max_deviation)
        self.r_max, self.bins = float(r_max), int(bins)
        self.reference = {key: self.histogram(frames) for key, frames in group_by_composition(reference).items()}
        self.keys = [composition_key(a) for a in structures]
        self.templates = [a.copy() for a in structures]
        self.windows: dict[int, deque] = {}
        self.last: dict[int, float] = {}  # replica → ∫|h − h_ref| dr of its latest full window

    def histogram(self, frames: Sequence[Atoms]) -> np.ndarray:
        """Counts of pair distances in ``bins`` bins up to ``r_max`` Å, and the pairs beyond as the last bin."""
        distances = pair_distances(list(frames))
        inside = _histogram(distances, self.r_max, self.bins)
        return np.append(inside, distances.size - inside.sum())

    @staticmethod
    def deviation(counts: np.ndarray, reference: np.ndarray) -> float:
        """∫|h − h_ref| dr of two count histograms (:meth:`histogram`)."""
        return _mae(counts, reference)

    def observe(self, replica: int, positions: np.ndarray, time_ps: float, cell: np.ndarray | None = None) -> bool:
        """Add one check of ``replica`` (positions (n_atoms, 3) Å at ``time_ps``, in ``cell`` (3, 3) Å where a
        barostat changed it); True when its last full window's h(r) is ``max_deviation`` or more from the
        reference's."""
        frame = self.templates[replica]
        frame.positions = positions
        if cell is not None:
            frame.set_cell(cell)
        window = self.windows.setdefault(replica, deque())
        window.append((float(time_ps), self.histogram([frame])))
        while window and time_ps - window[0][0] > self.window_ps + 1e-12:
            window.popleft()
        if time_ps - window[0][0] < self.window_ps - 1e-12:
            return False  # less than one window seen since the replica started
        counts = np.sum([c for _, c in window], axis=0)
        self.last[replica] = _mae(counts, self.reference[self.keys[replica]])
        return self.last[replica] > self.max_deviation

    def observe_all(self, replicas: Sequence[int], positions: torch.Tensor, counts: Sequence[int],
                    time_ps: float, cells: torch.Tensor | None = None) -> list[bool]:
        """:meth:`observe` for the active ``replicas`` whose atoms lie in ``positions`` in that order (and whose
        cells are ``cells``, where given)."""
        blocks = torch.split(positions.detach().double().cpu(), list(counts))
        cell_list = [None] * len(blocks) if cells is None else list(cells.detach().double().cpu().numpy())
        return [self.observe(r, block.numpy(), time_ps, cell)
                for r, block, cell in zip(replicas, blocks, cell_list, strict=True)]

    def describe(self, replica: int) -> str:
        return (f"h(r) of the last {self.window_ps * 1000:g} fs {self.last.get(replica, float('nan')):.3f} from the "
                f"reference's (∫|h − h_ref| dr; limit {self.max_deviation:g})")

    def state_dict(self) -> dict:
        return {"windows": {r: list(w) for r, w in self.windows.items()}, "last": dict(self.last)}

    def load_state_dict(self, state: dict) -> None:
        self.windows = {int(r): deque(w) for r, w in state["windows"].items()}
        self.last = {int(r): float(v) for r, v in state["last"].items()}
