"""What the exact Laplacian of ``ism`` keeps in memory, measured before training starts.

``ism`` computes ΔU = Σ_k ∂²U/∂x_k² exactly: one second-derivative pass per coordinate, 3N of them, each with
``create_graph=True``, and every pass's graph stays alive until the loss is differentiated. Its memory grows as
3N × (pairs within the cutoff) per structure: measured with the default SchNet, 27 kB per pass and pair (ethanol,
uracil, glycine and a 36-atom Al slab alike; PaiNN 84 kB), so 0.05 GB per ethanol but 2.5 GB per slab frame,
where a default batch of 32 was killed for want of memory without a word. :func:`laplacian_bytes` counts the
tensors autograd saves while it builds the energy, its gradient and one such pass for one structure (storage
counted once however many views share it), scaled to resident memory by a measured factor, and
:func:`check_laplacian_memory` refuses a batch that cannot fit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ase import Atoms
from torch import nn

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError

#: share of the free memory a batch's Laplacian may take (the rest: the model, data, optimiser, the allocator)
FREE_SHARE = 0.8
#: resident memory per byte saved for backward, measured (peak RSS of ism steps at batch 4 over the saved bytes
#: counted here): SchNet 3.1 (ethanol), 3.3 (uracil), 3.5 (Al slab); PaiNN 2.5 (ethanol), 2.6 (uracil). The
#: passes' temporaries and the allocator's free lists come on top of what autograd keeps. The largest, so that a
#: batch the check lets through fits.
RESIDENT_PER_SAVED = 3.5


class _SavedBytes:
    """A ``saved_tensors_hooks`` pair that adds up the storage of every tensor saved for backward."""

    def __init__(self) -> None:
        self.storages: set[int] = set()
        self.total = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.storages:
            self.storages.add(storage.data_ptr())
            self.total += storage.nbytes()
        return tensor

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def laplacian_bytes(model: nn.Module, structure: Atoms, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> int:
    """Bytes the exact Laplacian of ``structure`` takes: what autograd saves for the energy and its gradient,
    plus 3N second-derivative passes, each the size of the first (counted), times :data:`RESIDENT_PER_SAVED`."""
    batch = AtomsBatch.from_atoms([structure], dtype=dtype, device=device)
    positions = batch.positions.detach().requires_grad_(True)
    moved = batch.with_positions(positions)
    counter = _SavedBytes()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        energy = model(moved)
        (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=True)
        first = counter.total
        torch.autograd.grad(grad[0, 0], positions, create_graph=True)
        per_pass = counter.total - first
    return int(RESIDENT_PER_SAVED * (first + 3 * len(structure) * per_pass))


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device``: CUDA's own count, or the CPU's ``MemAvailable`` (Linux); None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    meminfo = Path("/proc/meminfo")
    if device.type != "cpu" or not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def check_laplacian_memory(model: nn.Module, structures: list[Atoms], batch_size: int, *,
                           dtype: torch.dtype, device: torch.device, free: int | None = None) -> int:
    """Bytes a batch of the largest of ``structures`` takes for ``ism``'s Laplacian on ``device`` (measured with
    ``model`` where it is now, on the CPU in :func:`.prepare.prepare`); a one-line error, with the batch size
    that fits and the sliced alternative, when that is more than :data:`FREE_SHARE` of the free memory
    (``free`` bytes, default :func:`free_memory` of ``device``)."""
    largest = max(structures, key=len)
    where = next((p.device for p in model.parameters()), torch.device("cpu"))
    per_structure = laplacian_bytes(model, largest, dtype=dtype, device=where)
    need = per_structure * batch_size
    free = free_memory(device) if free is None else free
    if free is not None and need > FREE_SHARE * free:
        fits = int(FREE_SHARE * free // per_structure)
        advice = f"--batch-size {fits} or less, or " if fits >= 1 else ""
        raise BoltzmatchError(
            f"--objective ism: the exact Laplacian of {largest.get_chemical_formula()} needs 3N = {3 * len(largest)} "
            f"second-derivative passes and about {per_structure / 1e9:.2f} GB per structure, {need / 1e9:.1f} GB at "
            f"batch size {batch_size}, more than the {free / 1e9:.1f} GB free on {device}; use {advice}"
            "--objective ssm (the same term estimated with --n-probes passes)")
    return need
