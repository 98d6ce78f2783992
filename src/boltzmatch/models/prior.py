"""A bonded prior energy fitted by Boltzmann inversion, added to a network's energy.

Models that learn from positions alone (``dsm``, ``ism``, ``ssm``, ``cd``) see nothing of the
regions the data never visits; their molecular dynamics can fall into a spurious well there (on
alanine dipeptide a dsm-trained SchNet moved the amide H onto a carbon and paired two methyl H
atoms, and heated to > 1500 K within 0.6 ps). Coarse-grained force fields learned from positions
(CGnet, Wang et al. 2019; CGSchNet, Husic et al. 2020) add a prior of harmonic bonds and angles
whose constants come from the data's own fluctuations, and train the network on the residual.

For one molecule's frames at temperature T (β = 1/k_BT in 1/eV):

* bond (i, j): U = ½ k (r − r₀)², r₀ the mean length (Å), k = 1/(β var r) (eV/Å²);
* angle at a shared atom, in c = cos θ: U = ½ k_c (c − c₀)², c₀ the mean, k_c = 1/(β var c) (eV);
* improper at an atom with exactly three bonded neighbours a < b < c, in its signed distance h (Å)
  from their plane (normal (x_b − x_a) × (x_c − x_a)): U = ½ k_h (h − h₀)², k_h = 1/(β var h).
  Bonds and angles alone let sp² centres pyramidalise: on alanine dipeptide the amide N and the
  carbonyl C of a dsm SchNet with that prior sat 0.27 and 0.15 Å out of plane in MD (Amber: 0.06,
  0.03), and the φ/ψ map drifted with them;
* torsion i–j–k–l along every bond, a von Mises fit to its angle ω: U = K (1 − cos(ω − μ)), μ the
  circular mean, K = κ/β (eV) with κ from the mean resultant length R (Best–Fisher). Multimodal or
  free torsions (methyl rotors) have R ≈ 0 and K ≈ 0; stiff ones (the amide ω, R ≈ 0.99) get high
  barriers; K is shared among the torsions about one bond (the four about an amide C–N each get a
  quarter, so the bond is inverted once). Without them the same model's MD turned both amides cis
  in 35 % of the frames (Amber: none) and folded the chain; with them, still in 18 % (below);
* a wall on every atom pair's distance d outside [d_min, d_max], the range the training frames
  filled widened by one standard deviation of d on each side: U = ½ k_w (max(0, d_min − d)² +
  max(0, d − d_max)²), k_w = 20 eV/Å² (the linear potential's wall). Zero on the data, so no
  objective sees it: a distance well beyond any seen in the Boltzmann samples is taken to be
  improbable. Without the margin held-out frames touched the walls (alanine: force r 0.869).
  With the four terms above but no walls the dsm SchNet's network still ran downhill 7.5 eV in
  5 ps of MD (pyramidal amide N, cis amides, φ > 0, none of them in the data): the terms are
  harmonic and the network outgrew them.

Each bond, angle and improper term alone reproduces the mean and variance of its coordinate at T. Bonds are those of the
first frame (ASE's natural cutoffs × 1.2, as in the stability criterion). The prior belongs to one
molecule (its atom order and elements) and refuses any other. Its constants live in the run's
``config.yaml`` under ``prior``, readable and exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from torch import nn

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError

PRIORS = ("bonded",)
WALL_K = 20.0  # eV/Å², the linear potential's data wall (5 and 10 let its MD run away, 20 held)
# walls start this many standard deviations of each pair's distance beyond the range the frames filled:
# at the range itself a fifth of held-out alanine frames touched some wall and force r fell 0.988 → 0.869
WALL_MARGIN = 1.0


class BondedPrior(nn.Module):
    """Harmonic bonds (in r), angles (in cos θ) and impropers (out-of-plane distance) of one molecule;
    ``forward(batch)`` → (n_structures,) eV."""

    def __init__(self, numbers: Sequence[int], bonds: Sequence[Sequence[float]], angles: Sequence[Sequence[float]],
                 temperature: float, impropers: Sequence[Sequence[float]] = (),
                 torsions: Sequence[Sequence[float]] = (), walls: Sequence[Sequence[float]] = (),
                 wall_k: float = 0.0):
        super().__init__()
        self.temperature = float(temperature)
        bonds = np.asarray(bonds, dtype=float).reshape(-1, 4)
        angles = np.asarray(angles, dtype=float).reshape(-1, 5)
        self.register_buffer("numbers", torch.as_tensor(list(numbers), dtype=torch.long))
        self.register_buffer("bond_index", torch.as_tensor(bonds[:, :2], dtype=torch.long))
        self.register_buffer("bond_r0", torch.as_tensor(bonds[:, 2]))
        self.register_buffer("bond_k", torch.as_tensor(bonds[:, 3]))
        self.register_buffer("angle_index", torch.as_tensor(angles[:, :3], dtype=torch.long))
        self.register_buffer("angle_c0", torch.as_tensor(angles[:, 3]))
        self.register_buffer("angle_k", torch.as_tensor(angles[:, 4]))
        impropers = np.asarray(impropers, dtype=float).reshape(-1, 6)
        self.register_buffer("improper_index", torch.as_tensor(impropers[:, :4], dtype=torch.long))
        self.register_buffer("improper_h0", torch.as_tensor(impropers[:, 4]))
        self.register_buffer("improper_k", torch.as_tensor(impropers[:, 5]))
        torsions = np.asarray(torsions, dtype=float).reshape(-1, 6)
        self.register_buffer("torsion_index", torch.as_tensor(torsions[:, :4], dtype=torch.long))
        self.register_buffer("torsion_mu", torch.as_tensor(torsions[:, 4]))
        self.register_buffer("torsion_k", torch.as_tensor(torsions[:, 5]))
        walls = np.asarray(walls, dtype=float).reshape(-1, 4)
        self.wall_k = float(wall_k)
        self.register_buffer("wall_index", torch.as_tensor(walls[:, :2], dtype=torch.long))
        self.register_buffer("wall_low", torch.as_tensor(walls[:, 2]))
        self.register_buffer("wall_high", torch.as_tensor(walls[:, 3]))

    @classmethod
    def fit(cls, structures: Sequence[Atoms], temperature: float) -> BondedPrior:
        """Boltzmann inversion on frames of one molecule at ``temperature`` (K)."""
        from ..data.geometry import bond_lengths, dihedral_angles, find_bonds, pair_distances
        from ..units import boltzmann_beta

        if not structures:
            raise BoltzmatchError("the bonded prior needs frames to fit")
        numbers = structures[0].numbers
        if any(len(a) != len(numbers) or (a.numbers != numbers).any() for a in structures):
            raise BoltzmatchError("--prior bonded needs frames of one molecule (same atoms in the same order); "
                                  "the data holds several")
        if any(a.pbc.any() for a in structures):
            raise BoltzmatchError("--prior bonded is for molecules; the data has periodic structures")
        if len(structures) < 10:
            raise BoltzmatchError(f"--prior bonded fits bond and angle widths from the frames; got {len(structures)}, "
                                  "needs at least 10")
        beta = boltzmann_beta(temperature)
        found = find_bonds(structures[0])
        lengths = bond_lengths(structures, found)
        bonds = [[int(i), int(j), float(lengths[:, b].mean()), 1.0 / (beta * max(lengths[:, b].var(), 1e-8))]
                 for b, (i, j) in enumerate(zip(found.i, found.j, strict=True))]
        pos = np.stack([a.positions for a in structures])
        neighbours: dict[int, list[int]] = {}
        for i, j in zip(found.i, found.j, strict=True):
            neighbours.setdefault(int(i), []).append(int(j))
            neighbours.setdefault(int(j), []).append(int(i))
        angles = []
        for centre in sorted(neighbours):
            ends = sorted(neighbours[centre])
            for x in range(len(ends)):
                for y in range(x + 1, len(ends)):
                    a, b = ends[x], ends[y]
                    cos = _cosines(pos, a, centre, b)
                    angles.append([a, centre, b, float(cos.mean()), 1.0 / (beta * max(cos.var(), 1e-10))])
        impropers = []
        for centre in sorted(neighbours):
            if len(neighbours[centre]) == 3:
                a, b, c = sorted(neighbours[centre])
                h = _heights(pos, centre, a, b, c)
                impropers.append([centre, a, b, c, float(h.mean()), 1.0 / (beta * max(h.var(), 1e-8))])
        torsions = []
        for j, k in zip(found.i.tolist(), found.j.tolist(), strict=True):
            around = [(i, m) for i in sorted(neighbours[j]) for m in sorted(neighbours[k])
                      if i != k and m != j and i != m]
            for i, m in around:  # each bond's torsions share its stiffness: one inversion per bond
                mean = np.exp(1j * dihedral_angles(structures, [(i, j, k, m)])[:, 0]).mean()
                torsions.append([i, j, k, m, float(np.angle(mean)),
                                 _von_mises_kappa(abs(mean)) / beta / len(around)])
        i_all, j_all = np.triu_indices(len(numbers), 1)
        distances = pair_distances(structures)  # (n_frames, pairs) in the same triu order
        margin = WALL_MARGIN * distances.std(0)
        walls = [[int(i), int(j), float(lo), float(hi)] for i, j, lo, hi in
                 zip(i_all, j_all, distances.min(0) - margin, distances.max(0) + margin, strict=True)]
        return cls(numbers.tolist(), bonds, angles, temperature, impropers, torsions, walls, WALL_K)

    def to_config(self) -> dict:
        """The prior as plain lists (for ``config.yaml``).

        bonds: [i, j, r₀ (Å), k (eV/Å²)]; angles: [a, centre, b, c₀ = mean cos θ, k_c (eV)];
        impropers: [centre, a, b, c, h₀ (Å), k_h (eV/Å²)]; torsions: [i, j, k, l, μ (rad), K (eV)];
        walls: [i, j, d_min (Å), d_max (Å)] with ``wall_k`` (eV/Å²).
        """
        bonds = [[int(i), int(j), float(r0), float(k)] for (i, j), r0, k in
                 zip(self.bond_index.tolist(), self.bond_r0.tolist(), self.bond_k.tolist(), strict=True)]
        angles = [[int(a), int(c), int(b), float(c0), float(k)] for (a, c, b), c0, k in
                  zip(self.angle_index.tolist(), self.angle_c0.tolist(), self.angle_k.tolist(), strict=True)]
        impropers = [[*map(int, idx), float(h0), float(k)] for idx, h0, k in
                     zip(self.improper_index.tolist(), self.improper_h0.tolist(), self.improper_k.tolist(),
                         strict=True)]
        torsions = [[*map(int, idx), float(mu), float(k)] for idx, mu, k in
                    zip(self.torsion_index.tolist(), self.torsion_mu.tolist(), self.torsion_k.tolist(), strict=True)]
        return {"kind": "bonded", "temperature": self.temperature, "numbers": self.numbers.tolist(),
                "bonds": bonds, "angles": angles, "impropers": impropers, "torsions": torsions,
                "wall_k": self.wall_k,
                "walls": [[int(i), int(j), float(lo), float(hi)] for (i, j), lo, hi in
                          zip(self.wall_index.tolist(), self.wall_low.tolist(), self.wall_high.tolist(), strict=True)]}

    @classmethod
    def from_config(cls, config: dict, source: str = "prior") -> BondedPrior:
        """The prior of a :meth:`to_config` dict; a missing key is a one-line error naming ``source``."""
        for key in ("numbers", "bonds", "angles", "temperature"):
            if key not in config:
                raise BoltzmatchError(f"{source}: missing key {key!r} (expected numbers, bonds, angles, temperature)")
        if config.get("kind", "bonded") not in PRIORS:
            raise BoltzmatchError(f"{source}: key 'kind' must be one of {', '.join(PRIORS)}, got {config['kind']!r}")
        return cls(config["numbers"], config["bonds"], config["angles"], config["temperature"],
                   config.get("impropers", ()), config.get("torsions", ()), config.get("walls", ()),
                   config.get("wall_k", 0.0))

    def forward(self, batch: AtomsBatch) -> torch.Tensor:
        n = len(self.numbers)
        counts = torch.bincount(batch.structure_index, minlength=batch.n_structures)
        if batch.n_atoms != n * batch.n_structures or bool((counts != n).any()) \
                or not torch.equal(batch.numbers.view(-1, n), self.numbers.expand(batch.n_structures, n)):
            raise BoltzmatchError(f"the model's bonded prior belongs to one molecule of {n} atoms "
                                  f"({_formula(self.numbers)}) in its training order; got other structures")
        pos = batch.positions.view(batch.n_structures, n, 3)
        dtype = pos.dtype
        bond = pos[:, self.bond_index[:, 1]] - pos[:, self.bond_index[:, 0]]
        r = torch.linalg.vector_norm(bond, dim=-1)
        energy = 0.5 * (self.bond_k.to(dtype) * (r - self.bond_r0.to(dtype)) ** 2).sum(-1)
        if len(self.angle_index):
            a, c, b = self.angle_index.unbind(1)
            u, v = pos[:, a] - pos[:, c], pos[:, b] - pos[:, c]
            cos = (u * v).sum(-1) / (torch.linalg.vector_norm(u, dim=-1) * torch.linalg.vector_norm(v, dim=-1))
            energy = energy + 0.5 * (self.angle_k.to(dtype) * (cos - self.angle_c0.to(dtype)) ** 2).sum(-1)
        if len(self.improper_index):
            centre, a, b, c = self.improper_index.unbind(1)
            normal = torch.linalg.cross(pos[:, b] - pos[:, a], pos[:, c] - pos[:, a])
            h = ((pos[:, centre] - pos[:, a]) * normal).sum(-1) / torch.linalg.vector_norm(normal, dim=-1)
            energy = energy + 0.5 * (self.improper_k.to(dtype) * (h - self.improper_h0.to(dtype)) ** 2).sum(-1)
        if len(self.torsion_index):
            i, j, k, m = self.torsion_index.unbind(1)
            b1, b2, b3 = pos[:, j] - pos[:, i], pos[:, k] - pos[:, j], pos[:, m] - pos[:, k]
            n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
            x = (n1 * n2).sum(-1)
            y = (torch.linalg.cross(n1, n2) * b2).sum(-1) / torch.linalg.vector_norm(b2, dim=-1)
            norm = torch.sqrt(x * x + y * y)
            mu = self.torsion_mu.to(dtype)
            cos_shift = (x * torch.cos(mu) + y * torch.sin(mu)) / norm  # cos(ω − μ)
            energy = energy + (self.torsion_k.to(dtype) * (1.0 - cos_shift)).sum(-1)
        if len(self.wall_index) and self.wall_k:
            d = torch.linalg.vector_norm(pos[:, self.wall_index[:, 1]] - pos[:, self.wall_index[:, 0]], dim=-1)
            outside = torch.relu(self.wall_low.to(dtype) - d) + torch.relu(d - self.wall_high.to(dtype))
            energy = energy + 0.5 * self.wall_k * (outside**2).sum(-1)
        return energy


def _cosines(pos: np.ndarray, a: int, centre: int, b: int) -> np.ndarray:
    u, v = pos[:, a] - pos[:, centre], pos[:, b] - pos[:, centre]
    return (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))


def _heights(pos: np.ndarray, centre: int, a: int, b: int, c: int) -> np.ndarray:
    """Signed distance (Å) of ``centre`` from the plane of a, b, c, normal (x_b − x_a) × (x_c − x_a)."""
    normal = np.cross(pos[:, b] - pos[:, a], pos[:, c] - pos[:, a])
    return ((pos[:, centre] - pos[:, a]) * normal).sum(-1) / np.linalg.norm(normal, axis=-1)


def _von_mises_kappa(r: float) -> float:
    """Concentration κ of the von Mises distribution with mean resultant length ``r`` (Best and Fisher 1981)."""
    if r < 0.53:
        return 2 * r + r**3 + 5 * r**5 / 6
    if r < 0.85:
        return -0.4 + 1.39 * r + 0.43 / (1 - r)
    return 1.0 / max(r**3 - 4 * r**2 + 3 * r, 1e-6)


def _formula(numbers: torch.Tensor) -> str:
    return Atoms(numbers=numbers.tolist()).get_chemical_formula()


def attach_prior(model: nn.Module, config: dict | None, source: str = "prior") -> nn.Module:
    """Give ``model`` the prior of ``config`` (a :meth:`BondedPrior.to_config` dict; None: no prior)."""
    if config is None:
        return model
    from .base import EnergyModel

    if not isinstance(model, EnergyModel) or type(model).forward is not EnergyModel.forward:
        raise BoltzmatchError(f"{source}: a prior adds to the energy of schnet, painn and mlp models; "
                              f"{getattr(model, 'name', type(model).__name__)} computes its energy its own way")
    model.prior = BondedPrior.from_config(config, source).to(next(iter(model.buffers())).device)
    return model
