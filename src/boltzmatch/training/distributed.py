"""torchrun's environment for the trainer: rank, world size, the process group (NCCL on GPUs, one process per
GPU; gloo on CPUs), sums and barriers."""

from __future__ import annotations

import os

import torch


class Distributed:
    """Rank and world size from torchrun's variables (one process: rank 0 of 1, nothing initialised).

    ``device``: where this process trains. Under torchrun on CUDA every process takes the GPU of its
    ``LOCAL_RANK`` and the group uses NCCL; on the CPU, gloo."""

    def __init__(self, device: torch.device | None = None):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", str(self.rank)))
        self.active = self.world_size > 1
        device = torch.device("cpu") if device is None else device
        if self.active and device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if self.active and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(self.backend)

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, indices):
        """This process's share of ``indices`` (every ``world_size``-th, from ``rank``)."""
        return indices[self.rank::self.world_size] if self.active else indices

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over processes of ``values`` (reduced on this process's device: NCCL reduces GPU tensors only),
        returned where ``values`` was."""
        if self.active:
            reduced = values.to(self.device)
            torch.distributed.all_reduce(reduced)
            values = reduced.to(values.device)
        return values

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()
