"""PaiNN (Schütt, Unke, Gastegger, ICML 2021): equivariant message passing with scalar and
vector features; energies from the scalar channel, rotation-invariant by construction."""

from __future__ import annotations

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from .base import EnergyModel, xavier_init
from .neighbors import neighbor_list
from .noise import NoiseEmbedding
from .radial import BesselRBF, GaussianRBF, cosine_cutoff

#: the radial bases of the filters: Gaussians as SchNet's (and SchNetPack's PaiNN configs), or the paper's
#: sin(nπr/r_c)/r (Bessel). Which is better depends on what the model learns from; measured on held-out data by
#: benchmarks/painn_radial_basis.py (results/painn_radial_basis.md; 50 epochs on 1,000 xTB frames at 500 K, 10 on
#: 1,800 QM9 molecules):
#:
#: - energies and forces: ethanol force MAE Gaussians 18.3 / 20.5 meV/Å (seeds 0 / 1), Bessel 32.6 / 35.2
#:   (SchNetPack 2.1.1's PaiNN with Gaussians 20.2 / 18.6); toluene, never used in development, 22.3 against 45.1
#: - positions alone: dsm on ethanol, force MAE Gaussians 172.1 / 181.6 meV/Å, Bessel 269.7 / 212.3; on toluene
#:   139.8 against 191.0; ssm on ethanol 171.8 against 231.8
#: - energies alone: ethanol energy MAE Gaussians 54.2 / 42.0 meV, Bessel 29.8 / 29.9; QM9 U0 207.0 / 245.2
#:   against 213.1 / 207.0
#:
#: so training picks the basis by objective (:func:`default_radial_basis`) where the config names none
RADIAL_BASES = {"gaussian": GaussianRBF, "bessel": BesselRBF}


def default_radial_basis(needs: tuple[str, ...] | list[str]) -> str:
    """The basis a new PaiNN trains with when its config names none, from the labels its objective reads
    (``needs``): ``bessel`` for energies alone, ``gaussian`` otherwise (forces, and score objectives, which learn
    the score −β∇U as force matching does: measured for dsm and ssm, :data:`RADIAL_BASES`)."""
    return "bessel" if "energy" in needs and "forces" not in needs else "gaussian"


class PaiNNMessage(nn.Module):
    def __init__(self, n_features: int, n_rbf: int):
        super().__init__()
        self.n_features = n_features
        self.phi = nn.Sequential(nn.Linear(n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))
        self.filter = nn.Linear(n_rbf, 3 * n_features)

    def forward(self, s, v, filters, unit, i, j, first: bool = False):
        """``filters``: this block's W(r_ij)·f_c(r_ij), (n_edges, 3F); ``first``: v is still zero."""
        x = self.phi(s).index_select(0, j) * filters  # index_select: scatter-add backward
        ds, dvv, dvs = torch.split(x, self.n_features, dim=1)
        dv = dvs[:, None, :] * unit[:, :, None]
        if not first:  # v[j]·dvv vanishes while v = 0; skipping it spares every derivative order
            dv = dv + v.index_select(0, j) * dvv[:, None, :]
        s = s + torch.zeros_like(s).index_add(0, i, ds)
        v = v + torch.zeros_like(v).index_add(0, i, dv)
        return s, v


class PaiNNUpdate(nn.Module):
    def __init__(self, n_features: int, epsilon: float = 1e-8):
        super().__init__()
        self.n_features = n_features
        self.epsilon = epsilon
        self.mix = nn.Linear(n_features, 2 * n_features, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features)
        )

    def forward(self, s, v):
        uv, vv = torch.split(self.mix(v), self.n_features, dim=2)
        # ε keeps the norm differentiable (twice) where the vector features vanish
        norm = torch.sqrt((vv**2).sum(1) + self.epsilon)
        a = self.mlp(torch.cat([s, norm], dim=1))
        a_vv, a_sv, a_ss = torch.split(a, self.n_features, dim=1)
        s = s + a_sv * (uv * vv).sum(1) + a_ss
        v = v + a_vv[:, None, :] * uv
        return s, v


class PaiNN(EnergyModel):
    """PaiNN energy model.

    Parameters
    ----------
    cutoff : Å
    n_interactions : message + update blocks
    n_features : scalar and vector feature size
    n_rbf : radial basis size
    max_z : largest atomic number embedded
    noise_levels : [σ_min, σ_max] in Å makes the model noise-conditional (see :mod:`.noise`)
    radial_basis : ``gaussian`` or ``bessel`` (:data:`RADIAL_BASES`); None: ``gaussian`` here, while training
        fills the config's value by objective (:func:`default_radial_basis`) and records it. Runs written before
        the choice existed used ``bessel`` and load with it (:func:`~.registry.stored_config`)
    """

    name = "painn"
    #: pairs beyond the cutoff contribute exactly nothing (the cutoff function is 0 there, with its slope): the model
    #: takes lists that hold them (``neighbor_list(..., masked=True)``), such as every pair of each molecule
    masks_beyond_cutoff = True

    def __init__(
        self, cutoff: float = 5.0, n_interactions: int = 3, n_features: int = 64, n_rbf: int = 20, max_z: int = 100,
        elements: list[int] | None = None, noise_levels: list[float] | None = None,
        radial_basis: str | None = None,
    ):
        super().__init__(max_z=max_z)
        self.cutoff = float(cutoff)
        self.elements = elements
        self.n_features = n_features
        self.embedding = nn.Embedding(max_z + 1, n_features)
        self.noise_levels = None if noise_levels is None else [float(v) for v in noise_levels]
        self.noise_embedding = None if noise_levels is None else NoiseEmbedding(n_features, noise_levels)
        radial_basis = radial_basis or "gaussian"
        if radial_basis not in RADIAL_BASES:
            raise ValueError(f"radial_basis must be {' or '.join(RADIAL_BASES)}, got {radial_basis!r}")
        self.radial_basis = radial_basis
        self.rbf = RADIAL_BASES[radial_basis](n_rbf, cutoff)
        self.messages = nn.ModuleList(PaiNNMessage(n_features, n_rbf) for _ in range(n_interactions))
        self.updates = nn.ModuleList(PaiNNUpdate(n_features) for _ in range(n_interactions))
        self.output = nn.Sequential(nn.Linear(n_features, n_features // 2), nn.SiLU(), nn.Linear(n_features // 2, 1))
        xavier_init(self)

    def atomic_energy(self, batch: AtomsBatch) -> torch.Tensor:
        edges = neighbor_list(batch, self.cutoff, masked=self.masks_beyond_cutoff)  # f_c masks every message
        dtype = batch.positions.dtype
        s = self.embedding(batch.numbers).to(dtype)
        if self.noise_embedding is not None:
            s = s + self.noise_embedding(batch, dtype)
        v = torch.zeros(batch.n_atoms, 3, self.n_features, dtype=dtype, device=s.device)
        rbf = self.rbf(edges.distances)
        fcut = cosine_cutoff(edges.distances, self.cutoff)
        unit = edges.vectors / edges.distances[:, None]
        # every block's filter in one matrix product (fewer kernels in each derivative order)
        weight = torch.cat([m.filter.weight for m in self.messages]).to(dtype)
        bias = torch.cat([m.filter.bias for m in self.messages]).to(dtype)
        filters = torch.split(nn.functional.linear(rbf, weight, bias) * fcut[:, None], 3 * self.n_features, dim=1)
        for k, (message, update) in enumerate(zip(self.messages, self.updates)):
            s, v = message(s, v, filters[k], unit, edges.i, edges.j, first=k == 0)
            s, v = update(s, v)
        return self.output(s).squeeze(1)
