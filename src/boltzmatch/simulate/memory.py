"""How many MD replicas fit on a GPU: peak memory of a force evaluation measured at two replica counts,
a linear model bytes = a + b·replicas fitted to them, and the largest count that keeps 20 % of the free
memory spare (the integrator's float64 state is small beside the model's activations). Under a barostat the
evaluation measured is the one MD makes there, energy, forces and stress (the strain's graph too)."""

from __future__ import annotations

import torch
from ase import Atoms

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces, energy_forces_and_stress, model_dtype
from ..utils.device import max_batch_from_memory

PROBE_REPLICAS = (8, 32)


def measured_peaks(model: torch.nn.Module, frames: list[Atoms], device: torch.device,
                   sizes: tuple[int, ...] = PROBE_REPLICAS, stress: bool = False) -> list[tuple[int, int]]:
    """(replicas, peak bytes above the resting allocation) of one energy-and-forces call per size (and stress,
    with ``stress``: the call MD makes under a barostat)."""
    peaks = []
    for n in sizes:
        batch = AtomsBatch.from_atoms([frames[k % len(frames)] for k in range(n)], dtype=model_dtype(model),
                                      device=device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        resting = torch.cuda.memory_allocated(device)
        (energy_forces_and_stress if stress else energy_and_forces)(model, batch)
        torch.cuda.synchronize(device)
        peaks.append((n, torch.cuda.max_memory_allocated(device) - resting))
    return peaks


def auto_replicas(model: torch.nn.Module, frames: list[Atoms], device: torch.device, cap: int = 65_536,
                  stress: bool = False) -> int:
    """``--replicas auto``: as many replicas as the GPU's free memory holds by the measured model (at most
    ``cap``), measured with the stress where ``stress`` (a barostat)."""
    if device.type != "cuda":
        raise BoltzmatchError("--replicas auto sizes the batch to a GPU's memory; on the CPU give a number")
    free, _ = torch.cuda.mem_get_info(device)
    replicas = min(max_batch_from_memory(measured_peaks(model, frames, device, stress=stress), free), cap)
    if replicas < 1:
        raise BoltzmatchError(f"--replicas auto: not even one replica fits in the {free / 2**30:.1f} GiB free on "
                              f"{device}")
    return replicas
