"""Isotropic pressure control for the batched MD: stochastic cell rescaling (Bernetti and Bussi 2020).

Each replica's cell and positions are scaled by a common factor ``exp(Δε/3)``, its velocities by the inverse,
where ε = ln V follows the overdamped Langevin equation

    dε = −(β_T/τ_p) (P₀ − P) dt + √(2 kT β_T / (V τ_p)) dW,

with P the instantaneous pressure 2K/(3V) − tr(σ)/3 (kinetic part, and the model's stress σ = (1/V) ∂U/∂ε),
β_T the compressibility the barostat assumes and τ_p its relaxation time. With the velocities scaled too, the
stationary distribution of the whole state is the isothermal–isobaric one, exp(−β(K + U + P₀V)) (for
non-interacting atoms ⟨V⟩ = (N + 1) kT / P₀, which the tests check). Only β_T/τ_p sets the dynamics: the
volume relaxes in τ_p times the ratio of the true compressibility to β_T, and a β_T far above the true one
makes that ratio small (fast, noisy volume moves).

Units: pressure in GPa, compressibility in 1/GPa and τ_p in fs at the interface; eV/Å³, Å³/eV and ASE time
inside. The GROMACS ``C-rescale`` barostat is this scheme.
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


class CellRescaling:
    """Stochastic cell rescaling of every replica to ``pressure`` (GPa), applied by the Langevin integrator
    between its two position half-steps (:class:`~.integrators.Langevin`).

    The pressure is read from the state's stress (eV/Å³, from the last force call) and its kinetic energy.
    ``generator`` draws the noise (the integrator's, so a seed fixes the run).
    """

    def __init__(self, pressure: float, *, tau: float = DEFAULT_BAROSTAT_TAU,
                 compressibility: float = DEFAULT_COMPRESSIBILITY, generator: torch.Generator | None = None):
        if not tau > 0:
            raise ValueError(f"the barostat's tau must be positive, got {tau} fs")
        if not compressibility > 0:
            raise ValueError(f"the compressibility must be positive, got {compressibility} 1/GPa")
        self.pressure_gpa = float(pressure)
        self.pressure = float(pressure) / GPA_PER_EV_A3  # eV/Å³
        self.tau = float(tau) * units.fs  # ASE time
        self.compressibility = float(compressibility) * GPA_PER_EV_A3  # Å³/eV
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def rescale(self, state, dt: float) -> None:
        """Advance every replica's log-volume by ``dt`` (ASE time) and scale its cell, positions and velocities
        (in place). ``state`` is an :class:`~.integrators.MDState` with ``cell`` and ``stress``."""
        volume = state.volume()
        pressure = instantaneous_pressure(state)
        rate = self.compressibility / self.tau
        noise = torch.randn(volume.shape, generator=self.generator, dtype=volume.dtype, device=volume.device)
        step = rate * (pressure - self.pressure) * dt + torch.sqrt(2.0 * state.kT * rate * dt / volume) * noise
        scale = torch.exp(step / 3.0)
        state.cell = state.cell * scale[:, None, None]
        per_atom = scale[state.structure_index][:, None]
        state.positions.mul_(per_atom)
        state.velocities.div_(per_atom)


def instantaneous_pressure(state) -> torch.Tensor:
    """(n_structures,) pressure in eV/Å³: 2K/(3V) from the velocities, minus the trace of the model's stress over
    3 (ASE's sign: a positive stress pulls the cell in)."""
    trace = state.stress.diagonal(dim1=1, dim2=2).sum(-1)
    return 2.0 * state.kinetic_energy() / (3.0 * state.volume()) - trace / 3.0


def check_barostat_settings(pressure: float | None, tau: float, compressibility: float) -> None:
    """Refuse settings no barostat can use (one line each)."""
    from ..errors import BoltzmatchError

    if pressure is not None and not math.isfinite(pressure):
        raise BoltzmatchError(f"--pressure must be a finite number of GPa, got {pressure}")
    if not tau > 0:
        raise BoltzmatchError(f"--barostat-tau must be positive, got {tau} fs")
    if not compressibility > 0:
        raise BoltzmatchError(f"--compressibility must be positive, got {compressibility} 1/GPa")
