"""Pressure control for the batched MD: stochastic cell rescaling (Bernetti and Bussi 2020; anisotropic: Del Tatto,
Raiteri and Bussi 2022).

The cell's axes form groups that scale together (:data:`COUPLINGS`): one group of x, y and z (isotropic), x and y
apart from z (semiisotropic) or each axis alone (anisotropic, orthorhombic cells). For each group g of d_g axes,
λ_g = Σ_{α∈g} ln L_α (ln V when isotropic) follows the overdamped Langevin equation

    dλ_g = −(β_T/τ_p) (P₀ − P_g) dt + √(2 kT β_T / (V τ_p)) dW_g,

with P_g the mean over the group's axes of the instantaneous pressure tensor's diagonal,
P_αα = Σᵢ mᵢ v²ᵢα / V − σ_αα (kinetic part, and the model's stress σ = (1/V) ∂U/∂ε), β_T the compressibility the
barostat assumes and τ_p its relaxation time. Each axis of the group is scaled by exp(Δλ_g/d_g), the cell's
component along it and every position's, and velocities by the inverse. The stationary distribution of the whole
state is then exp(−β(K + U + P₀V)) with each λ_g uniform a priori (V^N dV when isotropic): for non-interacting
atoms V ~ Gamma(N + 1, kT/P₀) under every coupling, which the tests check, and a shape held by a harmonic energy
in ln(L_x/L_y) fluctuates as that energy's Boltzmann distribution says. Only β_T/τ_p sets the dynamics: the
volume relaxes in τ_p times the ratio of the true compressibility to β_T, and a β_T far above the true one
makes that ratio small (fast, noisy volume moves).

Units: pressure in GPa, compressibility in 1/GPa and τ_p in fs at the interface; eV/Å³, Å³/eV and ASE time
inside. The GROMACS ``C-rescale`` barostat is this scheme (its ``isotropic``, ``semiisotropic`` and, without the
off-diagonal terms, ``anisotropic`` coupling).
"""

from __future__ import annotations

import math

import torch
from ase import units

from ..units import GPA_PER_EV_A3

#: fs, the barostat's relaxation time. Measured on a SchNet model of Cu at 600 K (benchmarks/npt.py, part tau): the
#: mean and spread of the volume are the same from 50 to 1000 fs, and its correlation time falls from 1.19 ps at
#: 1000 fs to 0.21 ps at 100 fs (the mean's error 2.7 times smaller for the same run) and 0.13 ps at 50 fs. 100 fs,
#: with :data:`DEFAULT_COMPRESSIBILITY`, still gives a crystal 4 times stiffer than Cu 25 fs (12 steps) to relax;
#: where the relaxation takes less than a step the volume's spread grows (Cu with β_T 0.45 /GPa: sd 7.9 Å³, not 5.9)
DEFAULT_BAROSTAT_TAU = 100.0
#: 1/GPa, the compressibility the barostat assumes: about a metal's (Cu 0.0072, Al 0.013); a liquid's is
#: 10–50 times larger (water 0.45), where the volume then relaxes that many times slower than τ_p
DEFAULT_COMPRESSIBILITY = 0.01

#: the groups of Cartesian axes (0 x, 1 y, 2 z) whose lengths scale together, per coupling
COUPLINGS = {"isotropic": ((0, 1, 2),), "semiisotropic": ((0, 1), (2,)), "anisotropic": ((0,), (1,), (2,))}


class CellRescaling:
    """Stochastic cell rescaling of every replica to ``pressure`` (GPa), applied by the Langevin integrator
    between its two position half-steps (:class:`~.integrators.Langevin`).

    ``coupling``: which axes scale together (:data:`COUPLINGS`); other than ``isotropic`` the cells must have
    their vectors along x, y and z (:func:`check_structures`). The pressure is read from the state's stress
    (eV/Å³, from the last force call) and its velocities. ``generator`` draws the noise (the integrator's, so a
    seed fixes the run).
    """

    def __init__(self, pressure: float, *, tau: float = DEFAULT_BAROSTAT_TAU,
                 compressibility: float = DEFAULT_COMPRESSIBILITY, coupling: str = "isotropic",
                 generator: torch.Generator | None = None):
        if not tau > 0:
            raise ValueError(f"the barostat's tau must be positive, got {tau} fs")
        if not compressibility > 0:
            raise ValueError(f"the compressibility must be positive, got {compressibility} 1/GPa")
        if coupling not in COUPLINGS:
            raise ValueError(f"the coupling must be one of {', '.join(COUPLINGS)}, got {coupling!r}")
        self.pressure_gpa = float(pressure)
        self.pressure = float(pressure) / GPA_PER_EV_A3  # eV/Å³
        self.tau = float(tau) * units.fs  # ASE time
        self.compressibility = float(compressibility) * GPA_PER_EV_A3  # Å³/eV
        self.coupling = coupling
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def rescale(self, state, dt: float) -> None:
        """Advance every replica's log-lengths by ``dt`` (ASE time) and scale its cell, positions and velocities
        (in place). ``state`` is an :class:`~.integrators.MDState` with ``cell`` and ``stress``."""
        groups = COUPLINGS[self.coupling]
        volume = state.volume()
        diagonal = pressure_diagonal(state)
        rate = self.compressibility / self.tau
        shape = volume.shape if len(groups) == 1 else (*volume.shape, len(groups))  # isotropic: one draw each
        noise = torch.randn(shape, generator=self.generator, dtype=volume.dtype, device=volume.device)
        noise = noise.reshape(len(volume), len(groups))
        width = torch.sqrt(2.0 * state.kT * rate * dt / volume)[:, None]
        scale = torch.ones_like(diagonal)
        for g, axes in enumerate(groups):
            drive = diagonal[:, list(axes)].mean(-1) - self.pressure
            step = rate * drive * dt + width[:, 0] * noise[:, g]
            scale[:, list(axes)] = torch.exp(step / len(axes))[:, None]
        state.cell = state.cell * scale[:, None, :]  # every cell vector's component along each axis
        per_atom = scale[state.structure_index]
        state.positions.mul_(per_atom)
        state.velocities.div_(per_atom)


def pressure_diagonal(state) -> torch.Tensor:
    """(n_structures, 3) diagonal of the instantaneous pressure tensor, eV/Å³: Σ m v²_α / V from the velocities,
    minus the model's stress σ_αα (ASE's sign: a positive stress pulls the cell in)."""
    kinetic = torch.zeros(state.n_structures, 3, dtype=state.velocities.dtype, device=state.velocities.device)
    kinetic.index_add_(0, state.structure_index, state.masses * state.velocities**2)
    return kinetic / state.volume()[:, None] - state.stress.diagonal(dim1=1, dim2=2)


def instantaneous_pressure(state) -> torch.Tensor:
    """(n_structures,) pressure in eV/Å³: 2K/(3V) from the velocities, minus the trace of the model's stress over
    3 (ASE's sign: a positive stress pulls the cell in)."""
    trace = state.stress.diagonal(dim1=1, dim2=2).sum(-1)
    return 2.0 * state.kinetic_energy() / (3.0 * state.volume()) - trace / 3.0


def check_structures(structures, name: str, coupling: str = "isotropic") -> None:
    """One-line error (naming ``name``, the file) unless every structure (ASE Atoms) is periodic in all three
    directions with a cell, and, for a coupling other than isotropic (which scales the axes apart), has its cell
    vectors along x, y and z."""
    import numpy as np

    from ..errors import BoltzmatchError

    for index, atoms in enumerate(structures):
        if not atoms.pbc.all() or atoms.cell.volume <= 0:
            raise BoltzmatchError(f"{name}: --pressure needs structures periodic in all three directions with a "
                                  f"cell; {atoms.get_chemical_formula()} (pbc {atoms.pbc.tolist()}) is not")
        cell = np.asarray(atoms.cell, dtype=float)
        if coupling != "isotropic" and np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8 * np.abs(cell).max():
            raise BoltzmatchError(f"{name}: frame {index}: --pressure-coupling {coupling} needs a cell with its "
                                  f"vectors along x, y and z (orthorhombic: ase.build's orthorhombic=True), got "
                                  f"{np.round(cell, 4).tolist()}")


def fixed_volume_reference(reference, name: str, pressure: float) -> list[str]:
    """Warnings (one line each) for the compositions whose reference frames (ASE Atoms) all share one volume: NVT
    data, whose h(r) is that of one density. Judged against it by the rdf rule, a run at ``pressure`` (GPa) whose
    density differs can read as a collapse: EMT Cu at 600 K, 0 GPa, against NVT frames at its 0 K cell (+2 GPa)
    reached 0.30 with a limit of 0.25, and 0.07–0.15 against ``generate --pressure 0`` frames."""
    from ..data.geometry import group_by_composition

    lines = []
    for frames in group_by_composition(list(reference)).values():
        volumes = [a.cell.volume for a in frames if a.pbc.all()]
        if volumes and max(volumes) - min(volumes) <= 1e-9 * max(volumes):
            lines.append(f"{name}: the reference's {frames[0].get_chemical_formula()} frames all have one volume "
                         f"({volumes[0]:.1f} Å³, NVT data): a run at {pressure:g} GPa that finds another density can "
                         f"read as collapsed by h(r); make the reference at this pressure (boltzmatch generate ... "
                         f"--pressure {pressure:g})")
    return lines


def check_barostat_settings(pressure: float | None, tau: float, compressibility: float,
                            coupling: str = "isotropic") -> None:
    """Refuse settings no barostat can use (one line each)."""
    from ..errors import BoltzmatchError

    if pressure is not None and not math.isfinite(pressure):
        raise BoltzmatchError(f"--pressure must be a finite number of GPa, got {pressure}")
    if not tau > 0:
        raise BoltzmatchError(f"--barostat-tau must be positive, got {tau} fs")
    if not compressibility > 0:
        raise BoltzmatchError(f"--compressibility must be positive, got {compressibility} 1/GPa")
    if coupling not in COUPLINGS:
        raise BoltzmatchError(f"--pressure-coupling must be one of {', '.join(COUPLINGS)}, got {coupling!r}")
