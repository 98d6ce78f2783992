"""torchrun's environment for the trainer: rank, world size, a gloo process group, sums and barriers."""

from __future__ import annotations

import os

import torch


class Distributed:
    """Rank and world size from torchrun's variables (one process: rank 0 of 1, nothing initialised)."""

    def __init__(self):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world_size > 1
        if self.active and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, indices):
        """This process's share of ``indices`` (every ``world_size``-th, from ``rank``)."""
        return indices[self.rank::self.world_size] if self.active else indices

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.active:
            torch.distributed.all_reduce(values)
        return values

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()
