"""``fisher-cd``: the Fisher divergence cannot see a spurious well far from the labelled frames; contrastive
divergence against the model's own samples there removes it, without a single new label."""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.io import write

from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.data.labels import make_structure
from boltzmatch.errors import BoltzmatchError
from boltzmatch.objectives import make_objective

R0, K_TRUE, T = 1.2, 20.0, 300.0  # Å, eV/Å², K
R_FAR, WIDTH, DEPTH = 2.6, 0.1, 8.0  # Å, Å, eV: where the spurious well sits, its width and depth


class SpringWithSpuriousWell(torch.nn.Module):
    """U = ½ k (r − R0)² − d·exp(−(r − R_FAR)²/(2 WIDTH²)) for diatomics (eV): the true spring plus a well of
    depth d eV at a bond length the reference never visits (a model that lets the bond break)."""

    def __init__(self, k: float, depth: float):
        super().__init__()
        self.log_k = torch.nn.Parameter(torch.tensor(float(np.log(k)), dtype=torch.float64))
        self.depth = torch.nn.Parameter(torch.tensor(float(depth), dtype=torch.float64))

    def forward(self, batch):
        x = batch.positions.reshape(-1, 2, 3)
        r = (x[:, 1] - x[:, 0]).norm(dim=-1)
        return 0.5 * self.log_k.exp() * (r - R0) ** 2 - self.depth * torch.exp(-((r - R_FAR) ** 2) / (2 * WIDTH**2))


def diatomics(n: int, seed: int, centre: float, sigma: float, forces: bool) -> list[Atoms]:
    """O₂ at bond lengths N(centre, sigma²) in random orientations; with the true spring's forces (eV/Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        r = centre + sigma * rng.normal()
        positions = np.stack([np.zeros(3), r * direction])
        f = -K_TRUE * (r - R0) * direction  # on atom 1; atom 0 feels the opposite
        frames.append(make_structure([8, 8], positions, energy=0.5 * K_TRUE * (r - R0) ** 2,
                                     forces=np.stack([-f, f])) if forces else Atoms("O2", positions=positions))
    return frames


def batch_of(frames) -> AtomsBatch:
    batch = AtomsBatch.from_atoms(frames, dtype=torch.float64)
    assert batch.forces is not None
    return batch


def train(objective, model, data, steps: int = 200) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        loss, _ = objective(model, batch_of([data[i] for i in rng.choice(len(data), 32)]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.fixture
def negatives(tmp_path):
    """The model's own MD frames: the bond stretched into the spurious well."""
    path = tmp_path / "negatives.xyz"
    write(path, diatomics(64, seed=3, centre=R_FAR, sigma=0.05, forces=False))
    return path


def has_basin(model: SpringWithSpuriousWell) -> bool:
    """True where U(r) has a local minimum between 1.6 and 3.2 Å: a stretched bond MD would stay in."""
    r = torch.linspace(1.6, 3.2, 1601, dtype=torch.float64)
    with torch.no_grad():
        k, d = model.log_k.exp(), model.depth
        u = 0.5 * k * (r - R0) ** 2 - d * torch.exp(-((r - R_FAR) ** 2) / (2 * WIDTH**2))
    return bool(((u[1:-1] < u[:-2]) & (u[1:-1] < u[2:])).any())


def test_fisher_alone_cannot_see_the_well_and_fisher_cd_removes_it(negatives):
    torch.manual_seed(0)
    data = diatomics(256, seed=0, centre=R0, sigma=float(np.sqrt(units.kB * T / K_TRUE)), forces=True)
    fisher_only, with_cd = SpringWithSpuriousWell(10.0, DEPTH), SpringWithSpuriousWell(10.0, DEPTH)
    assert has_basin(fisher_only)
    train(make_objective("fisher", temperature=T, energy_weight=0.0, force_weight=0.0), fisher_only, data)
    train(make_objective("fisher-cd", temperature=T, cd_options={"negatives": str(negatives), "steps": 5, "buffer": 64},
                         seed=0), with_cd, data)
    # both learn the spring from the labelled forces ...
    assert float(fisher_only.log_k.detach().exp()) == pytest.approx(K_TRUE, rel=0.05)
    assert float(with_cd.log_k.detach().exp()) == pytest.approx(K_TRUE, rel=0.1)
    # ... but only the likelihood term reaches the well where no label is: the stretched bond's basin stays
    # with the Fisher divergence alone, untouched, and goes with fisher-cd
    assert float(fisher_only.depth.detach()) == pytest.approx(DEPTH, abs=1e-3)
    assert has_basin(fisher_only)
    assert float(with_cd.depth.detach()) < DEPTH - 2.0
    assert not has_basin(with_cd)


def test_weight_zero_is_the_fisher_divergence_and_options_are_checked(negatives):
    data = diatomics(16, seed=4, centre=R0, sigma=0.03, forces=True)
    model = SpringWithSpuriousWell(15.0, 1.0)
    fisher = make_objective("fisher", temperature=T, energy_weight=0.0, force_weight=0.0, huber_delta=0.5)
    mixed = make_objective("fisher-cd", temperature=T, huber_delta=0.5,
                           cd_options={"negatives": str(negatives), "weight": 0.0})
    assert mixed.needs == ("forces",)
    assert float(mixed(model, batch_of(data))[0]) == float(fisher(model, batch_of(data))[0])
    with pytest.raises(BoltzmatchError, match="needs cd_options negatives"):
        make_objective("fisher-cd", temperature=T)
    with pytest.raises(BoltzmatchError, match="unknown option"):
        make_objective("fisher-cd", temperature=T, cd_options={"negatives": str(negatives), "wieght": 1})
