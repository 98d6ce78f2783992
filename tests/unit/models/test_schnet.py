"""SchNet's half-pair message passing equals the textbook directed-edge form, periodic images included."""

import torch
from ase.build import bulk, molecule

from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model
from boltzmatch.models.neighbors import neighbor_list
from boltzmatch.models.radial import cosine_cutoff


def directed_atomic_energy(model, batch):
    """SchNet as Schütt et al. write it: every directed edge i ← j with its own filter."""
    edges = neighbor_list(batch, model.cutoff)
    x = model.embedding(batch.numbers).to(batch.positions.dtype)
    rbf, fcut = model.rbf(edges.distances), cosine_cutoff(edges.distances, model.cutoff)
    for block in model.interactions:
        w = block.filter(rbf) * fcut[:, None]
        x = x + block.f2out(torch.zeros_like(x).index_add(0, edges.i, block.in2f(x)[edges.j] * w))
    return model.output(x).squeeze(1)


def test_half_pairs_match_directed_edges_for_molecules_and_small_periodic_cells():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": 4.0,
                         "dtype": "float64"})
    # a 2.6 Å cell: every atom sees several of its own images (i == j pairs) inside the cutoff
    tiny = bulk("Cu", "fcc", a=3.6)
    tiny.rattle(0.05, seed=1)
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=2)
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH"), tiny, crystal], dtype=torch.float64)
    assert bool((neighbor_list(batch, 4.0).i == neighbor_list(batch, 4.0).j).any())
    torch.testing.assert_close(model.atomic_energy(batch), directed_atomic_energy(model, batch), rtol=1e-12,
                               atol=1e-12)
