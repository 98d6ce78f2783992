"""The linear descriptor potential U_θ(x) = θ · φ(x), with closed-form fits in mind.

φ(x) (per structure) holds the two-body radial terms per unordered element pair, the
optional three-body terms per centre element, and the count of each element (per-element
energy offsets, eV). Because U is linear in θ, every score-matching objective except
contrastive divergence is quadratic in θ; :meth:`LinearPotential.descriptor_jacobian` and
:meth:`LinearPotential.descriptor_laplacian` give the G = ∂φ/∂x and Δφ the closed forms need.

Pair basis fitted to the data. Each element pair's Gaussians sit at the quantiles of the
distances that pair takes in the training data, within [r_lo, r_hi]
(:meth:`LinearPotential.fit_pair_basis`), and each
basis function continues *linearly* outside that range (value and slope of the boundary), so
the pair energy V_ab(r) = Σ_k θ_k b_k(r) has bounded forces where no data constrained θ. With
Gaussians on [0, r_c] for every pair, the fitted V of malonaldehyde reached −9·10⁴ eV for H–H
below the shortest H–H distance in the data and −2.5·10⁴ eV for O–O, and MD at 500 K heated to
10⁸ K within 0.1 ps. A model that has not seen data uses [0, r_c] for every pair.

The wall. Bounded is not enough: sums of pair terms still had deep wells where the data has no
pair distances at all (O–H between the bonded 1.0 Å and the non-bonded 1.8 Å), and MD found them
(xTB energy +5.8 eV along the model's trajectory while the model's fell by 2.4 eV). Samples
drawn at temperature T that never show a distance in thousands of frames say the Boltzmann
weight there is small, so each pair distance outside the stretches the training data filled
(gaps ≥ :data:`MIN_GAP`, and beyond both ends) pays ½·wall·d², d its distance to them (Å). The
wall is zero on the training data, so no fit sees it; it only decides where the model may go.
On malonaldehyde (fisher, 16 replicas × 10 ps, 500 K) 16/16 replicas collapsed within 0.2 ps
with walls of 0–10 eV/Å² and none with 20 (the default).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel
from .descriptors import AtomicDescriptors, triplets
from .neighbors import neighbor_list
from .radial import cosine_cutoff, cosine_cutoff_derivative

MIN_SPAN = 0.1  # Å: K Gaussians of a pair are together at least this wide
MIN_GAP = 0.1  # Å: an empty stretch of training distances at least this long is a gap the wall covers
MAX_INTERVALS = 8  # covered intervals kept per pair (the largest gaps win)


class LinearPotential(EnergyModel):
    """U_θ = θ·φ(x) in eV.

    Parameters
    ----------
    elements : atomic numbers the model covers
    cutoff : Å
    n_rbf : radial basis functions per element pair
    angular : add three-body terms
    wall : stiffness (eV/Å²) of the harmonic wall ½·wall·(r − r_edge)² that each pair distance
        meets outside its training range; zero inside, so no fit sees it (0 turns it off)
    """

    name = "linear"

    def __init__(self, elements: list[int], cutoff: float = 5.0, n_rbf: int = 16, angular: bool = True,
                 wall: float = 20.0):
        super().__init__()
        self.cutoff = float(cutoff)
        self.wall = float(wall)
        self.descriptors = AtomicDescriptors(elements, cutoff=cutoff, n_rbf=n_rbf, angular=angular)
        n = self.descriptors.n_elements
        pairs = torch.full((n, n), -1, dtype=torch.long)
        index = 0
        for a in range(n):
            for b in range(a, n):
                pairs[a, b] = pairs[b, a] = index
                index += 1
        self.register_buffer("pair_table", pairs, persistent=False)
        self.n_pairs = index
        self.n_features = self.n_pairs * n_rbf + n * self.descriptors.n_three_body + n
        self.theta = nn.Parameter(torch.zeros(self.n_features))
        centers = torch.linspace(0.0, self.cutoff, n_rbf)
        width = self.cutoff / max(n_rbf - 1, 1)
        self.register_buffer("pair_range", torch.tensor([[0.0, self.cutoff]] * self.n_pairs))
        self.register_buffer("pair_centers", centers.repeat(self.n_pairs, 1))
        self.register_buffer("pair_widths", torch.full((self.n_pairs, n_rbf), width))
        covered = torch.full((self.n_pairs, MAX_INTERVALS, 2), float("inf"))
        covered[:, 0] = torch.tensor([0.0, self.cutoff])
        self.register_buffer("pair_covered", covered)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # run directories written before the pair basis was fitted used Gaussians on [0, r_c] for every pair
        for name in ("pair_range", "pair_centers", "pair_widths", "pair_covered"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _edge_pairs(self, batch: AtomsBatch, edges) -> torch.Tensor:
        species = self.descriptors.element_index(batch.numbers)
        return self.pair_table[species[edges.i], species[edges.j]]

    @torch.no_grad()
    def fit_pair_basis(self, batch: AtomsBatch) -> None:
        """Fit each element pair's basis to the distances (Å) it takes in ``batch`` (within r_c).

        Centres sit at the quantiles (k + ½)/K of those distances, so none falls in a gap of the
        data (bonded and non-bonded O–H distances leave 1.1–1.8 Å empty); each width is the larger
        spacing to a neighbouring centre, at least :data:`MIN_SPAN`/K. The range [r_lo, r_hi] is
        the data's. Pairs absent from ``batch`` keep their basis.
        """
        edges = neighbor_list(batch, self.cutoff)
        pair = self._edge_pairs(batch, edges)
        k = self.descriptors.n_rbf
        for p in range(self.n_pairs):
            r = edges.distances[pair == p].double()
            if not r.numel():
                continue
            lo, hi = float(r.min()), min(float(r.max()), self.cutoff)
            centers = torch.quantile(r[:1_000_000], (torch.arange(k, dtype=torch.float64) + 0.5) / k)
            gaps = torch.diff(centers)
            spacing = torch.maximum(torch.cat([gaps[:1], gaps]), torch.cat([gaps, gaps[-1:]])) if k > 1 else \
                torch.tensor([hi - lo])
            self.pair_range[p] = torch.tensor([lo, hi])
            self.pair_covered[p] = _covered_intervals(r.sort().values)
            self.pair_centers[p] = centers
            self.pair_widths[p] = spacing.clamp_min(MIN_SPAN / k)

    @staticmethod
    def _gaussians(r: torch.Tensor, centers: torch.Tensor, widths: torch.Tensor, cutoff: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """g_k(r)·f_c(r) and its r-derivative (1/Å), each (..., n_rbf); ``centers``/``widths`` (..., n_rbf) Å."""
        z = (r[..., None] - centers) / widths
        gauss = torch.exp(-0.5 * z**2)
        fc, dfc = cosine_cutoff(r, cutoff)[..., None], cosine_cutoff_derivative(r, cutoff)[..., None]
        return gauss * fc, gauss * (dfc - z / widths * fc)

    def _continued(self, r, centers, widths, lo, hi) -> tuple[torch.Tensor, torch.Tensor]:
        inside = torch.minimum(torch.maximum(r, lo), hi)
        value, slope = self._gaussians(inside, centers, widths, self.cutoff)
        return value + slope * (r - inside)[..., None], slope

    def _pair_parameters(self, pair: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return (self.pair_centers[pair].to(dtype), self.pair_widths[pair].to(dtype),
                self.pair_range[pair, 0].to(dtype), self.pair_range[pair, 1].to(dtype))

    def pair_basis(self, r: torch.Tensor, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """b_k(r) and b_k'(r) (1/Å) of pairs ``pair`` at distances ``r``, continued linearly outside the range."""
        return self._continued(r, *self._pair_parameters(pair, r.dtype))

    def features(self, batch: AtomsBatch) -> torch.Tensor:
        """φ(x): (n_structures, n_features)."""
        d = self.descriptors
        edges = neighbor_list(batch, self.cutoff)
        species = d.element_index(batch.numbers)
        k = d.n_rbf
        dtype = batch.positions.dtype
        phi = torch.zeros(batch.n_structures, self.n_features, dtype=dtype, device=batch.positions.device)
        # two-body: each unordered pair appears as two directed edges, hence ½
        pair_index = self._edge_pairs(batch, edges)
        pair = 0.5 * self.pair_basis(edges.distances, pair_index)[0]
        column = pair_index * k
        rows = batch.structure_index[edges.i][:, None].expand(-1, k)
        cols = column[:, None] + torch.arange(k, device=column.device)
        phi = phi.index_put((rows, cols), pair, accumulate=True)
        offset = self.n_pairs * k
        if d.angular:
            t = d.n_three_body
            three = d.three_body(batch, edges)
            rows = batch.structure_index[:, None].expand(-1, t)
            cols = offset + species[:, None] * t + torch.arange(t, device=species.device)
            phi = phi.index_put((rows, cols), three, accumulate=True)
            offset += d.n_elements * t
        ones = torch.ones(batch.n_atoms, dtype=dtype, device=phi.device)
        return phi.index_put((batch.structure_index, offset + species), ones, accumulate=True)

    def forward(self, batch: AtomsBatch) -> torch.Tensor:
        energy = self.features(batch) @ self.theta
        return energy + self.wall_energy(batch) if self.wall else energy

    def wall_energy(self, batch: AtomsBatch) -> torch.Tensor:
        """(n_structures,) Σ_pairs ½·wall·d(r)², eV, d the distance (Å) from r to the distances the
        pair took in the training data (gaps of ≥ :data:`MIN_GAP` and both ends): zero on that data."""
        edges = neighbor_list(batch, self.cutoff)
        pair = self._edge_pairs(batch, edges)
        r = edges.distances
        covered = self.pair_covered[pair].to(r.dtype)  # (E, M, 2); unused slots are [inf, inf]
        below, above = covered[..., 0] - r[:, None], r[:, None] - covered[..., 1]
        outside = torch.where(torch.isinf(covered[..., 0]), float("inf"),
                              torch.maximum(torch.maximum(below, above), torch.zeros_like(below))).amin(1)
        per_edge = 0.25 * self.wall * outside**2  # each pair appears as two directed edges
        return torch.zeros(batch.n_structures, dtype=r.dtype, device=r.device).index_add(
            0, batch.structure_index[edges.i], per_edge)

    def element_offset_slice(self) -> slice:
        """Where the per-element energy offsets (eV) sit in θ."""
        return slice(self.n_features - self.descriptors.n_elements, self.n_features)

    def _local_terms(self, batch: AtomsBatch):
        """Edges and triplets with the φ column each of their terms feeds."""
        d = self.descriptors
        edges = neighbor_list(batch, self.cutoff)
        species = d.element_index(batch.numbers)
        k = torch.arange(d.n_rbf, device=species.device)
        pair_cols = (self._edge_pairs(batch, edges) * d.n_rbf)[:, None] + k
        triplet = None
        if d.angular:
            a, b = triplets(edges, batch.n_atoms)
            t = d.n_three_body
            center = edges.i[a]
            cols = self.n_pairs * d.n_rbf + species[center][:, None] * t + torch.arange(t, device=species.device)
            uw = torch.cat([edges.vectors[a], edges.vectors[b]], dim=1)
            triplet = (center, edges.j[a], edges.j[b], uw, cols, a < b)
        return edges, pair_cols, triplet

    def _pair_value(self, u: torch.Tensor, centers, widths, lo, hi) -> torch.Tensor:
        return 0.5 * self._continued(torch.linalg.vector_norm(u), centers, widths, lo, hi)[0]

    def descriptor_jacobian(self, batch: AtomsBatch) -> torch.Tensor:
        """G = ∂φ/∂x as (n_atoms, 3, n_features), in 1/Å per descriptor unit; F_θ = −G θ.

        Built term by term with the chain rule: a pair term is h(r), ``r = |u|``, u = x_j − x_i, so
        ∂h/∂u = h'(r) u/r; a three-body term is h(r_a, r_b, cos θ) of two edge vectors (u, w).
        The scalar derivatives h', ∂h/∂r_a, ∂h/∂r_b, ∂h/∂cos come from the descriptors' own
        derivative methods. Both directions of a pair, and both orders of a triplet's two edges,
        contribute alike, so one of each is computed and doubled.
        """
        batch = batch.with_positions(batch.positions.detach())
        edges, pair_cols, triplet = self._local_terms(batch)
        dtype, device = batch.positions.dtype, batch.positions.device
        D = self.n_features
        G = torch.zeros(batch.n_atoms * D, 3, dtype=dtype, device=device)  # row: atom · D + column

        def add(atoms: torch.Tensor, cols: torch.Tensor, values: torch.Tensor) -> None:
            G.index_add_(0, (atoms[:, None] * D + cols).reshape(-1), values.reshape(-1, 3))

        half = edges.half()
        r, unit = edges.distances[half], edges.vectors[half] / edges.distances[half, None]
        dh = self.pair_basis(r, pair_cols[half, 0] // self.descriptors.n_rbf)[1]  # (E/2, K)
        j_pair = dh[:, :, None] * unit[:, None, :]  # 2 directions × ½ h'(r) u/r
        add(edges.j[half], pair_cols[half], j_pair)
        add(edges.i[half], pair_cols[half], -j_pair)
        if triplet is not None:
            center, j, k, uw, cols = (t[triplet[-1]] for t in triplet[:-1])  # one order per triplet
            u, w = uw[:, :3], uw[:, 3:]
            ra, rb = torch.linalg.vector_norm(u, dim=1), torch.linalg.vector_norm(w, dim=1)
            cos = (u * w).sum(1) / (ra * rb)
            d_ra, d_rb, d_cos = (2.0 * d for d in self.descriptors.angular_partials(ra, rb, cos))  # both orders
            u_hat, w_hat = u / ra[:, None], w / rb[:, None]
            dcos_du = (w_hat - cos[:, None] * u_hat) / ra[:, None]  # ∂cos/∂u, 1/Å
            dcos_dw = (u_hat - cos[:, None] * w_hat) / rb[:, None]
            du = d_ra[..., None] * u_hat[:, None, :] + d_cos[..., None] * dcos_du[:, None, :]  # (n, T, 3)
            dw = d_rb[..., None] * w_hat[:, None, :] + d_cos[..., None] * dcos_dw[:, None, :]
            add(j, cols, du)
            add(k, cols, dw)
            add(center, cols, -(du + dw))
        return G.reshape(batch.n_atoms, D, 3).permute(0, 2, 1)

    def descriptor_laplacian(self, batch: AtomsBatch) -> torch.Tensor:
        """Δφ summed over all 3N coordinates of each structure: (n_structures, n_features), 1/Å².

        Exact, term by term. For a pair term h(u), u = x_j − x_i (j ≠ i): Δ = 2 Δ_u h. For a
        three-body term h(u, w), w = x_k − x_i: Δ = S_u Δ_u h + S_w Δ_w h + 2 S_uw tr(∂_u ∂_w h)
        with S_u = 2[j≠i], S_w = 2[k≠i], S_uw = [j≠i][k≠i](1 + [j=k]) (periodic images included).
        """
        batch = batch.with_positions(batch.positions.detach())
        edges, pair_cols, triplet = self._local_terms(batch)
        dtype, device = batch.positions.dtype, batch.positions.device
        lap = torch.zeros(batch.n_structures, self.n_features, dtype=dtype, device=device)
        pair = pair_cols[:, 0] // self.descriptors.n_rbf
        hess = torch.func.vmap(torch.func.hessian(self._pair_value))(
            edges.vectors, *self._pair_parameters(pair, dtype))  # (E, K, 3, 3)
        moving = (edges.i != edges.j).to(dtype)[:, None]
        values = 2.0 * moving * hess.diagonal(dim1=-2, dim2=-1).sum(-1)
        rows = batch.structure_index[edges.i][:, None].expand_as(pair_cols)
        lap.index_put_((rows, pair_cols), values, accumulate=True)
        if triplet is not None and triplet[3].shape[0]:  # (vmap refuses empty batches: diatomics have no triplets)
            center, j, k, uw, cols, _ = triplet
            h = torch.func.vmap(torch.func.hessian(self.descriptors.triplet_values))(uw)  # (n, T, 6, 6)
            lap_u = h[..., :3, :3].diagonal(dim1=-2, dim2=-1).sum(-1)
            lap_w = h[..., 3:, 3:].diagonal(dim1=-2, dim2=-1).sum(-1)
            cross = h[..., :3, 3:].diagonal(dim1=-2, dim2=-1).sum(-1)
            ju, kw = (j != center).to(dtype), (k != center).to(dtype)
            s_uw = ju * kw * (1.0 + (j == k).to(dtype))
            values = 2 * ju[:, None] * lap_u + 2 * kw[:, None] * lap_w + 2 * s_uw[:, None] * cross
            rows = batch.structure_index[center][:, None].expand_as(cols)
            lap.index_put_((rows, cols), values, accumulate=True)
        return lap


def _covered_intervals(r: torch.Tensor) -> torch.Tensor:
    """(MAX_INTERVALS, 2) intervals (Å) that the sorted distances ``r`` fill, split at the largest gaps."""
    gaps = torch.diff(r)
    split = torch.nonzero(gaps >= MIN_GAP).squeeze(1)
    if split.numel() > MAX_INTERVALS - 1:
        split = split[torch.argsort(gaps[split], descending=True)[:MAX_INTERVALS - 1]].sort().values
    starts = torch.cat([r[:1], r[split + 1]])
    ends = torch.cat([r[split], r[-1:]])
    out = torch.full((MAX_INTERVALS, 2), float("inf"), dtype=torch.float64)
    out[:len(starts), 0], out[:len(starts), 1] = starts, ends
    return out
