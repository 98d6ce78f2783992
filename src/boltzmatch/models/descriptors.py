"""Smooth invariant descriptors: element-resolved radial terms and optional three-body terms.

For atom i with neighbours j within the cutoff r_c (Å):

* two-body: ``ρ_i[e, k] = Σ_{j: element(j)=e} g_k(r_ij) f_c(r_ij)``, Gaussian g_k on [0, r_c],
  f_c the cosine cutoff;
* three-body (optional, Behler–Parrinello G4-like): for each (η, λ, ζ),
  ``Σ_{j≠k} 2^{1−ζ} (1 + λ cos θ_jik)^ζ exp(−η (r_ij² + r_ik²)) f_c(r_ij) f_c(r_ik)``.

These per-atom vectors feed the MLP. The linear potential sums them per structure into a
vector φ(x) whose two-body part is indexed by the *unordered* element pair (no duplicate
columns), plus the count of each element (per-element energy offsets).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .neighbors import Edges, neighbor_list
from .radial import GaussianRBF, cosine_cutoff, cosine_cutoff_derivative

DEFAULT_ANGULAR = ((0.005, 1.0, 1.0), (0.005, -1.0, 1.0), (0.005, 1.0, 4.0), (0.005, -1.0, 4.0))


class ElementIndex(nn.Module):
    """Maps atomic numbers to 0..n_elements−1 for the elements a model was built for."""

    def __init__(self, elements: list[int]):
        super().__init__()
        self.elements = sorted(int(z) for z in elements)
        table = torch.full((max(self.elements) + 1,), -1, dtype=torch.long)
        table[torch.tensor(self.elements)] = torch.arange(len(self.elements))
        self.register_buffer("table", table, persistent=False)

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        if int(numbers.max()) >= self.table.numel() or bool((self.table[numbers] < 0).any()):
            from ase.data import chemical_symbols

            from ..errors import BoltzmatchError

            known = {int(z) for z in self.elements}
            unseen = sorted({int(z) for z in numbers.unique().tolist()} - known)
            raise BoltzmatchError(
                f"element(s) {', '.join(chemical_symbols[z] for z in unseen)} not seen in training; "
                f"the model knows {', '.join(chemical_symbols[z] for z in sorted(known))}"
            )
        return self.table[numbers]


def _positive_part(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0) by torch.where (clamp has no native forward-mode derivative; see cosine_cutoff)."""
    return torch.where(x > 0, x, 0.0)


def triplets(edges: Edges, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of distinct edges (a, b) sharing their centre atom i (both orders)."""
    order = torch.argsort(edges.i, stable=True)
    counts = torch.bincount(edges.i, minlength=n_atoms)
    starts = torch.cumsum(counts, 0) - counts
    per_edge = counts[edges.i[order]]
    a_pos = torch.repeat_interleave(torch.arange(order.numel(), device=order.device), per_edge)
    within = torch.arange(a_pos.numel(), device=order.device) - torch.repeat_interleave(
        torch.cumsum(per_edge, 0) - per_edge, per_edge
    )
    b_pos = starts[edges.i[order][a_pos]] + within
    keep = a_pos != b_pos
    return order[a_pos[keep]], order[b_pos[keep]]


class AtomicDescriptors(nn.Module):
    """Per-atom invariant descriptors (see module docstring)."""

    def __init__(
        self,
        elements: list[int],
        cutoff: float = 5.0,
        n_rbf: int = 8,
        angular: bool = False,
        angular_terms: tuple[tuple[float, float, float], ...] = DEFAULT_ANGULAR,
    ):
        super().__init__()
        self.cutoff = float(cutoff)
        self.element_index = ElementIndex(elements)
        self.n_elements = len(self.element_index.elements)
        self.n_rbf = n_rbf
        self.rbf = GaussianRBF(n_rbf, cutoff)
        self.angular = angular
        self.register_buffer("angular_terms", torch.tensor(angular_terms, dtype=torch.float32).reshape(-1, 3))

    @property
    def n_two_body(self) -> int:
        return self.n_elements * self.n_rbf

    @property
    def n_three_body(self) -> int:
        return int(self.angular_terms.shape[0]) if self.angular else 0

    @property
    def size(self) -> int:
        return self.n_two_body + self.n_three_body

    def pair_terms(self, edges: Edges) -> torch.Tensor:
        """(n_edges, n_rbf): g_k(r) f_c(r) for each edge."""
        return self.radial(edges.distances)

    def radial(self, distances: torch.Tensor) -> torch.Tensor:
        """(..., n_rbf): g_k(r) f_c(r)."""
        return self.rbf(distances) * cosine_cutoff(distances, self.cutoff)[..., None]

    def radial_derivative(self, distances: torch.Tensor) -> torch.Tensor:
        """(..., n_rbf): d/dr [g_k(r) f_c(r)], 1/Å."""
        fc, dfc = cosine_cutoff(distances, self.cutoff), cosine_cutoff_derivative(distances, self.cutoff)
        return self.rbf.derivative(distances) * fc[..., None] + self.rbf(distances) * dfc[..., None]

    def angular_partials(self, ra: torch.Tensor, rb: torch.Tensor, cos: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """∂/∂r_a, ∂/∂r_b (1/Å) and ∂/∂cos θ of :meth:`angular_values`, each (..., n_three_body).

        By hand (plain tensor operations are several times cheaper here than forward-mode AD,
        whose first use also imports torch._dynamo); tested against autograd.
        """
        fa, fb = cosine_cutoff(ra, self.cutoff), cosine_cutoff(rb, self.cutoff)
        dfa, dfb = cosine_cutoff_derivative(ra, self.cutoff), cosine_cutoff_derivative(rb, self.cutoff)
        terms = self.angular_terms.to(cos.dtype)
        eta, lam, zeta = terms[:, 0], terms[:, 1], terms[:, 2]
        base = _positive_part(1.0 + lam * cos[..., None])
        gauss = 2.0 ** (1.0 - zeta) * torch.exp(-eta * (ra**2 + rb**2)[..., None])
        angle = base**zeta
        d_cos = gauss * zeta * lam * torch.where(base > 0, base ** (zeta - 1.0), 0.0) * (fa * fb)[..., None]
        d_ra = gauss * angle * fb[..., None] * (dfa[..., None] - 2.0 * eta * ra[..., None] * fa[..., None])
        d_rb = gauss * angle * fa[..., None] * (dfb[..., None] - 2.0 * eta * rb[..., None] * fb[..., None])
        return d_ra, d_rb, d_cos

    def angular_values(self, ra: torch.Tensor, rb: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
        """(..., n_three_body) three-body terms of one triplet from its two distances and cos θ."""
        fc = cosine_cutoff(ra, self.cutoff) * cosine_cutoff(rb, self.cutoff)
        terms = self.angular_terms.to(cos.dtype)
        eta, lam, zeta = terms[:, 0], terms[:, 1], terms[:, 2]
        return (
            2.0 ** (1.0 - zeta) * _positive_part(1.0 + lam * cos[..., None]) ** zeta
            * torch.exp(-eta * (ra**2 + rb**2)[..., None]) * fc[..., None]
        )

    def triplet_values(self, uw: torch.Tensor) -> torch.Tensor:
        """Three-body terms of one triplet from its edge vectors ``uw = (u, w)`` (6,), Å."""
        u, w = uw[:3], uw[3:]
        ra, rb = torch.linalg.vector_norm(u), torch.linalg.vector_norm(w)
        return self.angular_values(ra, rb, (u * w).sum() / (ra * rb))

    def three_body(self, batch: AtomsBatch, edges: Edges) -> torch.Tensor:
        """(n_atoms, n_three_body) three-body terms."""
        a, b = triplets(edges, batch.n_atoms)
        ra, rb = edges.distances[a], edges.distances[b]
        cos = (edges.vectors[a] * edges.vectors[b]).sum(1) / (ra * rb)
        values = self.angular_values(ra, rb, cos)
        out = torch.zeros(batch.n_atoms, values.shape[1], dtype=cos.dtype, device=cos.device)
        return out.index_add(0, edges.i[a], values)

    def forward(self, batch: AtomsBatch, edges: Edges | None = None) -> torch.Tensor:
        """(n_atoms, size) descriptors."""
        edges = neighbor_list(batch, self.cutoff) if edges is None else edges
        species = self.element_index(batch.numbers)
        pair = self.pair_terms(edges)
        slot = species[edges.j] * self.n_rbf
        index = slot[:, None] + torch.arange(self.n_rbf, device=pair.device)
        out = torch.zeros(batch.n_atoms, self.n_two_body, dtype=pair.dtype, device=pair.device)
        out = out.index_put((edges.i[:, None].expand_as(index), index), pair, accumulate=True)
        if self.angular:
            out = torch.cat([out, self.three_body(batch, edges)], dim=1)
        return out
