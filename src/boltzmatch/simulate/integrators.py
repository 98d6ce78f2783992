"""Batched MD integrators in torch: Langevin (BAOAB), velocity Verlet (NVE), Nosé–Hoover (NVT).

All replicas live in one flat state (atoms of a replica contiguous, as in
:class:`~boltzmatch.data.AtomsBatch`) and share one model call per step. Units are ASE's
internal ones: positions Å, velocities Å per ASE time unit (``ase.units.fs`` of them make a fs),
masses amu, energies eV, forces eV/Å; kinetic energy is ½mv² in eV. Timesteps are given in fs.

A force function maps positions (n_atoms, 3) to (energy (n_structures,), forces (n_atoms, 3)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from ase import units

from .barostat import CellRescaling

ForceFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

INTEGRATORS = ("langevin", "verlet", "nose-hoover")


@dataclass
class MDState:
    """Flat state of all active replicas (float64).

    positions, velocities, forces : (n_atoms, 3); masses : (n_atoms, 1) amu;
    energy : (n_structures,) eV; structure_index : (n_atoms,) long; kT : (n_structures,) eV,
    the target thermal energy of each replica; dof : (n_structures,) degrees of freedom.
    Under a barostat (:mod:`.barostat`): cell (n_structures, 3, 3) Å, rows the cell vectors, which change
    as the run goes; stress (n_structures, 3, 3) eV/Å³, the model's at the last force call. Otherwise None.
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    forces: torch.Tensor
    energy: torch.Tensor
    masses: torch.Tensor
    structure_index: torch.Tensor
    kT: torch.Tensor
    dof: torch.Tensor
    cell: torch.Tensor | None = None
    stress: torch.Tensor | None = None

    @property
    def n_structures(self) -> int:
        return int(self.kT.shape[0])

    def per_structure(self, values: torch.Tensor) -> torch.Tensor:
        """Sum per-atom ``values`` (n_atoms,) over each structure."""
        return torch.zeros(self.n_structures, dtype=values.dtype, device=values.device).index_add_(
            0, self.structure_index, values)

    def kinetic_energy(self) -> torch.Tensor:
        """(n_structures,) ½ Σ m v² in eV."""
        return self.per_structure(0.5 * (self.masses * self.velocities**2).sum(-1))

    def temperature(self) -> torch.Tensor:
        """(n_structures,) instantaneous temperature 2K/(dof·k_B) in K."""
        return 2.0 * self.kinetic_energy() / (self.dof * units.kB)

    def volume(self) -> torch.Tensor:
        """(n_structures,) volume of each replica's cell, Å³ (a barostat's state only)."""
        return torch.linalg.det(self.cell).abs()

    def select(self, keep: torch.Tensor) -> MDState:
        """The state restricted to the structures where ``keep`` (n_structures,) is True, renumbered."""
        atom_keep = keep[self.structure_index]
        new_index = torch.cumsum(keep.long(), 0) - 1
        return MDState(
            positions=self.positions[atom_keep], velocities=self.velocities[atom_keep],
            forces=self.forces[atom_keep], energy=self.energy[keep], masses=self.masses[atom_keep],
            structure_index=new_index[self.structure_index[atom_keep]], kT=self.kT[keep], dof=self.dof[keep],
            cell=None if self.cell is None else self.cell[keep],
            stress=None if self.stress is None else self.stress[keep],
        )


def update_forces(state: MDState, force_fn: ForceFn) -> None:
    """Energy and forces at the state's positions (in place); under a barostat (a state with ``stress``) the
    stress too, in the replicas' present cells, from ``force_fn.with_stress``."""
    if state.stress is not None:
        state.energy, state.forces, state.stress = force_fn.with_stress(state.positions, state.cell)
    else:
        state.energy, state.forces = force_fn(state.positions)


def maxwell_boltzmann(masses: torch.Tensor, kT_atoms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Velocities (n_atoms, 3) drawn from the Maxwell–Boltzmann distribution at kT (eV) per atom."""
    noise = torch.randn(masses.shape[0], 3, generator=generator, dtype=masses.dtype, device=masses.device)
    return noise * torch.sqrt(kT_atoms / masses)[:, None]


def remove_drift(state: MDState) -> None:
    """Subtract each replica's centre-of-mass velocity (in place)."""
    momentum = torch.zeros(state.n_structures, 3, dtype=state.velocities.dtype, device=state.velocities.device)
    momentum.index_add_(0, state.structure_index, state.masses * state.velocities)
    total_mass = state.per_structure(state.masses[:, 0])
    state.velocities -= (momentum / total_mass[:, None])[state.structure_index]


class Integrator:
    """Base class: ``step(state, force_fn)`` advances all replicas by one timestep in place."""

    name = "base"
    removes_drift = False  # whether the centre-of-mass momentum is conserved (dof = 3N − 3)

    def __init__(self, timestep: float):
        if not timestep > 0:
            raise ValueError(f"timestep must be positive, got {timestep} fs")
        self.timestep = float(timestep)
        self.dt = float(timestep) * units.fs

    def step(self, state: MDState, force_fn: ForceFn) -> None:
        raise NotImplementedError

    def select(self, keep: torch.Tensor) -> None:
        """Drop per-replica integrator variables of removed replicas."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def _kick(self, state: MDState, fraction: float) -> None:
        state.velocities += (fraction * self.dt) * state.forces / state.masses

    def _update_forces(self, state: MDState, force_fn: ForceFn) -> None:
        update_forces(state, force_fn)


class VelocityVerlet(Integrator):
    """NVE: velocity Verlet, symplectic and time-reversible."""

    name = "verlet"
    removes_drift = True

    def step(self, state: MDState, force_fn: ForceFn) -> None:
        self._kick(state, 0.5)
        state.positions += self.dt * state.velocities
        self._update_forces(state, force_fn)
        self._kick(state, 0.5)


class Langevin(Integrator):
    """NVT Langevin dynamics, BAOAB splitting (Leimkuhler and Matthews 2013).

    ``friction`` in 1/fs. The O step draws from a seeded ``torch.Generator``, so a seed fixes the run.
    With a ``barostat`` (:class:`~.barostat.CellRescaling`), NPT: the cells are rescaled after the O step,
    between the two position half-steps, so the force call that follows sees the new cells.
    """

    name = "langevin"

    def __init__(self, timestep: float, friction: float = 0.01, generator: torch.Generator | None = None,
                 barostat: CellRescaling | None = None):
        super().__init__(timestep)
        self.barostat = barostat
        if not friction > 0:
            raise ValueError(f"friction must be positive, got {friction} 1/fs")
        self.friction = float(friction)
        self.c1 = math.exp(-self.friction * self.timestep)
        self.c2 = math.sqrt(1.0 - self.c1**2)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def step(self, state: MDState, force_fn: ForceFn) -> None:
        self._kick(state, 0.5)  # B
        state.positions += (0.5 * self.dt) * state.velocities  # A
        noise = torch.randn(state.velocities.shape, generator=self.generator, dtype=state.velocities.dtype,
                            device=state.velocities.device)
        sigma = torch.sqrt(state.kT[state.structure_index][:, None] / state.masses)
        state.velocities.mul_(self.c1).add_(self.c2 * sigma * noise)  # O
        if self.barostat is not None:
            self.barostat.rescale(state, self.dt)
        state.positions += (0.5 * self.dt) * state.velocities  # A
        self._update_forces(state, force_fn)
        self._kick(state, 0.5)  # B

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class NoseHoover(Integrator):
    """NVT Nosé–Hoover with one thermostat per replica, time-reversible Trotter splitting.

    ``tau`` (fs) is the thermostat period: Q = dof·kT·τ². The extended energy
    H + ½Qξ² + dof·kT·η is conserved (see :meth:`conserved_energy`).
    """

    name = "nose-hoover"
    removes_drift = True

    def __init__(self, timestep: float, tau: float = 100.0):
        super().__init__(timestep)
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau} fs")
        self.tau = float(tau) * units.fs
        self.xi: torch.Tensor | None = None  # thermostat friction per replica, 1/(ASE time)
        self.eta: torch.Tensor | None = None  # its time integral (dimensionless)

    def _thermostat(self, state: MDState, q: torch.Tensor) -> None:
        """Half a timestep of the thermostat: ξ by dt/4, velocities scaled by exp(−ξ dt/2), ξ by dt/4."""
        quarter, half = 0.25 * self.dt, 0.5 * self.dt
        self.xi += quarter * (2.0 * state.kinetic_energy() - state.dof * state.kT) / q
        state.velocities *= torch.exp(-half * self.xi)[state.structure_index][:, None]
        self.eta += half * self.xi
        self.xi += quarter * (2.0 * state.kinetic_energy() - state.dof * state.kT) / q

    def step(self, state: MDState, force_fn: ForceFn) -> None:
        if self.xi is None:
            self.xi = torch.zeros_like(state.kT)
            self.eta = torch.zeros_like(state.kT)
        q = state.dof * state.kT * self.tau**2
        self._thermostat(state, q)
        self._kick(state, 0.5)
        state.positions += self.dt * state.velocities
        self._update_forces(state, force_fn)
        self._kick(state, 0.5)
        self._thermostat(state, q)

    def conserved_energy(self, state: MDState) -> torch.Tensor:
        """(n_structures,) H + ½Qξ² + dof·kT·η in eV, constant up to integration error."""
        q = state.dof * state.kT * self.tau**2
        xi = torch.zeros_like(state.kT) if self.xi is None else self.xi
        eta = torch.zeros_like(state.kT) if self.eta is None else self.eta
        return state.energy + state.kinetic_energy() + 0.5 * q * xi**2 + state.dof * state.kT * eta

    def select(self, keep: torch.Tensor) -> None:
        if self.xi is not None:
            self.xi, self.eta = self.xi[keep], self.eta[keep]

    def state_dict(self) -> dict:
        return {"xi": self.xi, "eta": self.eta}

    def load_state_dict(self, state: dict) -> None:
        self.xi, self.eta = state["xi"], state["eta"]


def make_integrator(name: str, timestep: float, *, friction: float = 0.01, tau: float = 100.0,
                    generator: torch.Generator | None = None, barostat: CellRescaling | None = None) -> Integrator:
    """``langevin`` (friction 1/fs; NPT with a ``barostat``), ``verlet`` (NVE) or ``nose-hoover`` (tau fs);
    timestep in fs."""
    if barostat is not None and name != "langevin":
        raise ValueError(f"a barostat runs inside the Langevin step only, not {name!r}")
    if name == "langevin":
        return Langevin(timestep, friction=friction, generator=generator, barostat=barostat)
    if name == "verlet":
        return VelocityVerlet(timestep)
    if name == "nose-hoover":
        return NoseHoover(timestep, tau=tau)
    from ..errors import BoltzmatchError

    raise BoltzmatchError(f"unknown integrator {name!r}; expected one of {', '.join(INTEGRATORS)}")
