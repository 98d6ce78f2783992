"""The linear descriptor potential U_θ(x) = θ · φ(x), with closed-form fits in mind.

φ(x) (per structure) holds the two-body radial terms per unordered element pair, the
optional three-body terms per centre element, and the count of each element (per-element
energy offsets, eV). Because U is linear in θ, every score-matching objective except
contrastive divergence is quadratic in θ; :meth:`LinearPotential.descriptor_jacobian` and
:meth:`LinearPotential.descriptor_laplacian` give the G = ∂φ/∂x and Δφ the closed forms need.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel
from .descriptors import AtomicDescriptors, triplets
from .neighbors import neighbor_list


class LinearPotential(EnergyModel):
    """U_θ = θ·φ(x) in eV.

    Parameters
    ----------
    elements : atomic numbers the model covers
    cutoff : Å
    n_rbf : radial basis functions per element pair
    angular : add three-body terms
    """

    name = "linear"

    def __init__(self, elements: list[int], cutoff: float = 5.0, n_rbf: int = 8, angular: bool = False):
        super().__init__()
        self.cutoff = float(cutoff)
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

    def features(self, batch: AtomsBatch) -> torch.Tensor:
        """φ(x): (n_structures, n_features)."""
        d = self.descriptors
        edges = neighbor_list(batch, self.cutoff)
        species = d.element_index(batch.numbers)
        k = d.n_rbf
        dtype = batch.positions.dtype
        phi = torch.zeros(batch.n_structures, self.n_features, dtype=dtype, device=batch.positions.device)
        # two-body: each unordered pair appears as two directed edges, hence ½
        pair = 0.5 * d.pair_terms(edges)
        column = self.pair_table[species[edges.i], species[edges.j]] * k
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
        return self.features(batch) @ self.theta

    def element_offset_slice(self) -> slice:
        """Where the per-element energy offsets (eV) sit in θ."""
        return slice(self.n_features - self.descriptors.n_elements, self.n_features)

    def _local_terms(self, batch: AtomsBatch):
        """Edges and triplets with the φ column each of their terms feeds."""
        d = self.descriptors
        edges = neighbor_list(batch, self.cutoff)
        species = d.element_index(batch.numbers)
        k = torch.arange(d.n_rbf, device=species.device)
        pair_cols = (self.pair_table[species[edges.i], species[edges.j]] * d.n_rbf)[:, None] + k
        triplet = None
        if d.angular:
            a, b = triplets(edges, batch.n_atoms)
            t = d.n_three_body
            center = edges.i[a]
            cols = self.n_pairs * d.n_rbf + species[center][:, None] * t + torch.arange(t, device=species.device)
            uw = torch.cat([edges.vectors[a], edges.vectors[b]], dim=1)
            triplet = (center, edges.j[a], edges.j[b], uw, cols, a < b)
        return edges, pair_cols, triplet

    def _pair_value(self, u: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.descriptors.radial(torch.linalg.vector_norm(u))

    def descriptor_jacobian(self, batch: AtomsBatch) -> torch.Tensor:
        """G = ∂φ/∂x as (n_atoms, 3, n_features), in 1/Å per descriptor unit; F_θ = −G θ.

        Built term by term with the chain rule: a pair term is h(r), r = |u|, u = x_j − x_i, so
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
        dh = self.descriptors.radial_derivative(r)  # (E/2, K)
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
        hess = torch.func.vmap(torch.func.hessian(self._pair_value))(edges.vectors)  # (E, K, 3, 3)
        moving = (edges.i != edges.j).to(dtype)[:, None]
        values = 2.0 * moving * hess.diagonal(dim1=-2, dim2=-1).sum(-1)
        rows = batch.structure_index[edges.i][:, None].expand_as(pair_cols)
        lap.index_put_((rows, pair_cols), values, accumulate=True)
        if triplet is not None:
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
