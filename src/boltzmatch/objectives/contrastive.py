"""Contrastive divergence for molecular energy models: learning from positions alone.

Loss per batch: β·(mean U_θ(data) − mean U_θ(model samples)) + α·β²·(mean of (U − Ū_data)² over
data and samples), the energies' spread taken about the batch's mean data energy (a molecule's
absolute energy carries the per-element reference energies, which the regulariser must not pull
towards zero). Its gradient is that of the Boltzmann log-likelihood E_data[−log p_θ] when the
samples follow p_θ ∝ exp(−βU_θ).

The model samples come from the batched MD of :mod:`boltzmatch.simulate.integrators` (Langevin,
BAOAB, at each frame's temperature): persistent chains (a :class:`~boltzmatch.simulate.langevin.ReplayBuffer`
per composition) that start from data frames, advance ``steps`` MD steps per training step, and
restart from a data frame with probability ``reinit``. Like ism/ssm/dsm it reads positions only.
Given ``negatives`` (positions per composition, e.g. the frames of the model's own MD), the chains start and
restart from those instead: samples of p_θ from the start, where the model's MD goes (``fisher-cd``,
:mod:`.fisher_cd`).
"""

from __future__ import annotations

import torch
from ase.data import atomic_masses

from ..data.atoms_batch import AtomsBatch
from ..models.base import energy_and_forces
from ..simulate.integrators import Langevin, MDState, maxwell_boltzmann
from ..simulate.langevin import ReplayBuffer
from .base import structure_beta

CD_DEFAULTS = {"steps": 20, "timestep": 0.5, "friction": 0.01, "buffer": 2048, "reinit": 0.05, "alpha": 0.0}


class ContrastiveDivergence:
    """The ``cd`` objective.

    Parameters
    ----------
    temperature : K, where the batch has no per-frame temperatures
    steps : MD steps per training step (Langevin, ``timestep`` fs, ``friction`` 1/fs)
    buffer : chains kept per composition; reinit : fraction restarted from data frames each step
    alpha : weight of the energy-spread regulariser (dimensionless, on βU)
    negatives : {composition (atomic numbers): (k, n_atoms, 3) positions in Å} the chains start from
        instead of data frames (a composition without negatives starts from data frames)
    """

    kind = "cd"
    needs: tuple[str, ...] = ()

    def __init__(self, temperature: float | None = None, *, steps: int = 20, timestep: float = 0.5,
                 friction: float = 0.01, buffer: int = 2048, reinit: float = 0.05, alpha: float = 0.0, seed: int = 0,
                 negatives: dict[tuple, torch.Tensor] | None = None):
        self.temperature = temperature
        self.steps, self.alpha = int(steps), float(alpha)
        self.buffer_size, self.reinit = int(buffer), float(reinit)
        self.generator = torch.Generator().manual_seed(seed)
        self.integrator = Langevin(timestep, friction=friction, generator=self.generator)
        self.buffers: dict[tuple, ReplayBuffer] = {}
        self.pools: dict[tuple, torch.Tensor] = {}
        self.fixed = set()  # compositions whose pool is the given negatives, never the batches' frames
        for key, positions in (negatives or {}).items():
            self.pools[tuple(key)] = torch.as_tensor(positions).detach()
            self.fixed.add(tuple(key))

    def _buffer(self, key: tuple, frames: torch.Tensor) -> ReplayBuffer:
        """The chains of composition ``key``; ``frames`` (k, n_atoms, 3) of the current batch join its data pool."""
        if key not in self.fixed:
            pool = self.pools.get(key)
            pool = frames if pool is None else torch.cat([pool, frames])[-self.buffer_size:]
            self.pools[key] = pool.detach()

        def fresh(n: int) -> torch.Tensor:
            pick = torch.randint(len(self.pools[key]), (n,), generator=self.generator)
            return self.pools[key][pick].clone()

        if key not in self.buffers:
            self.buffers[key] = ReplayBuffer(self.buffer_size, fresh, reinit=self.reinit, generator=self.generator)
        else:
            self.buffers[key].fresh = fresh
        return self.buffers[key]

    def model_samples(self, model: torch.nn.Module, batch: AtomsBatch, beta: torch.Tensor) -> AtomsBatch:
        """A batch of the same compositions, positions advanced by MD from the replay buffers."""
        counts = torch.bincount(batch.structure_index, minlength=batch.n_structures)
        starts = torch.cumsum(counts, 0) - counts
        new_positions = batch.positions.detach().clone()
        groups: dict[tuple, list[int]] = {}
        for s in range(batch.n_structures):
            numbers = batch.numbers[starts[s]:starts[s] + counts[s]]
            groups.setdefault(tuple(numbers.tolist()), []).append(s)
        chains = []
        for key, members in groups.items():
            n_atoms = len(key)
            atom_index = (starts[members][:, None] + torch.arange(n_atoms, device=starts.device)[None, :]).reshape(-1)
            frames = batch.positions.detach()[atom_index].reshape(len(members), n_atoms, 3)
            buffer = self._buffer(key, frames)
            index, start = buffer.draw(len(members))
            chains.append((key, buffer, index, atom_index, start))
            new_positions[atom_index] = start.reshape(-1, 3).to(new_positions.dtype)
        moved = self._run_md(model, batch.with_positions(new_positions), beta)
        for key, buffer, index, atom_index, _ in chains:
            buffer.push(index, moved[atom_index].reshape(len(index), len(key), 3))
        return batch.with_positions(moved.to(batch.positions.dtype))

    def _run_md(self, model: torch.nn.Module, batch: AtomsBatch, beta: torch.Tensor) -> torch.Tensor:
        dtype = batch.positions.dtype
        device = batch.positions.device
        masses = torch.as_tensor(atomic_masses[batch.numbers.cpu().numpy()], dtype=torch.float64,
                                 device=device)[:, None]
        kT = (1.0 / beta).double().detach()
        self.integrator.generator = self._md_generator(device)

        def force_fn(positions: torch.Tensor):
            energy, forces = energy_and_forces(model, batch.with_positions(positions.to(dtype)))
            return energy.detach().double(), forces.detach().double()

        positions = batch.positions.detach().double()
        energy, forces = force_fn(positions)
        state = MDState(positions=positions, velocities=maxwell_boltzmann(masses[:, 0], kT[batch.structure_index],
                                                                          self.integrator.generator),
                        forces=forces, energy=energy, masses=masses, structure_index=batch.structure_index,
                        kT=kT, dof=3.0 * torch.bincount(batch.structure_index, minlength=len(kT)).double())
        was_training = model.training
        model.eval()
        try:
            for _ in range(self.steps):
                self.integrator.step(state, force_fn)
        finally:
            model.train(was_training)
        return state.positions

    def _md_generator(self, device: torch.device) -> torch.Generator:
        """The MD noise's generator: the objective's own on the CPU (runs and checkpoints as before); on a GPU
        one there, seeded from it once (a resumed GPU run then draws other noise than an uninterrupted one)."""
        if device.type == "cpu":
            return self.generator
        if getattr(self, "device_generator", None) is None or self.device_generator.device != device:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            self.device_generator = torch.Generator(device=device).manual_seed(seed)
        return self.device_generator

    def __call__(self, model: torch.nn.Module, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        beta = structure_beta(batch, self.temperature)
        samples = self.model_samples(model, batch, beta)
        u_data, u_model = model(batch), model(samples)
        cd = (beta * u_data).mean() - (beta * u_model).mean()
        loss = cd
        if self.alpha:
            centre = u_data.detach().mean()
            loss = loss + self.alpha * ((beta * (u_data - centre)) ** 2 + (beta * (u_model - centre)) ** 2).mean()
        gap = (beta * (u_model - u_data)).mean().detach()
        return loss, {"cd_loss": cd.detach(), "cd_energy_gap": gap}

    def state_dict(self) -> dict:
        return {"buffers": {k: b.state_dict() for k, b in self.buffers.items()}, "pools": self.pools,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pools = dict(state["pools"])
        for key, buffer_state in state["buffers"].items():
            self._buffer(key, self.pools[key][:0]).load_state_dict(buffer_state)
        self.generator.set_state(state["generator"])
