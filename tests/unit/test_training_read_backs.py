"""A training epoch on a GPU stalls at every read-back from the device; the CPU cannot time that, but it can
count them (tests/helpers.ReadBacks). And the weight average that replaced torch's AveragedModel (two reads of
its count per step) gives its numbers."""

from __future__ import annotations

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from boltzmatch.data import write_structures
from boltzmatch.models import build_model
from boltzmatch.training.ema import WeightAverage
from boltzmatch.training.prepare import prepare
from boltzmatch.training.settings import TrainSettings
from boltzmatch.training.trainer import EnergyStep
from helpers import ReadBacks, cuda_synchronisations, labelled_molecules

#: per batch: none, since the batch brings the data set's own pairs (models/packed_pairs.py; the pair search
#: read back its candidate count and the count within the cutoff); MACE groups the batch's atoms by element
PER_BATCH = {"schnet": 0, "painn": 0, "mace": 0}
#: per epoch: the training means, the validation errors with the validation objective (one read each; the
#: objective, a function of the same energies and forces, was a pass and a read of its own), and a read of a host
#: tensor (the shuffle's order) that costs nothing on a GPU either
PER_EPOCH = 3


def _epoch_read_backs(tmp_path, model: str, frames: int, device: str = "cpu") -> tuple[int, int]:
    """Read-backs during the second epoch of a run on ``frames`` structures, and the batches it evaluated. On the
    CPU counted by name (ReadBacks); on CUDA every synchronisation the driver sees."""
    write_structures(tmp_path / f"{frames}.xyz", labelled_molecules(frames))
    settings = TrainSettings(data=str(tmp_path / f"{frames}.xyz"), batch_size=8, clip=10.0, device=device)
    settings.check()
    run = prepare(settings, None, tmp_path / f"run{frames}", False, model)
    step = EnergyStep(run)
    step.run(0, {"epoch": 0})
    batches = -(-len(run.split.train) // 8) + -(-len(run.split.val) // 16)  # train; validation (one pass)
    if device == "cpu":
        with ReadBacks() as reads:
            step.run(1, {"epoch": 1})
        return len(reads.calls), batches
    return cuda_synchronisations(lambda: step.run(1, {"epoch": 1})), batches


@pytest.mark.parametrize("model", ["schnet", "painn", "mace"])
def test_a_training_epoch_reads_nothing_back_per_batch_but_maces_grouping(tmp_path, model):
    """It was 18 per training batch for SchNet (gathering the batch 4, the pair search 7, the element check 2,
    the loss terms 3, the weight average 2), 11 per validation batch, and Adam read each parameter's step."""
    for frames in (40, 80):
        reads, batches = _epoch_read_backs(tmp_path, model, frames)
        assert reads == PER_BATCH[model] * batches + PER_EPOCH, (frames, reads, batches)


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["schnet", "mace"])
def test_on_a_gpu_the_synchronisations_per_batch_are_the_counted_read_backs(tmp_path, model):
    """The ground truth of the count above, on CUDA: the extra synchronisations of 40 more structures (4 more
    training batches) are the read-backs per batch, no more (a blocking copy per step would show here)."""
    small, small_batches = _epoch_read_backs(tmp_path, model, 40, "cuda")
    large, large_batches = _epoch_read_backs(tmp_path, model, 80, "cuda")
    assert (large - small) == PER_BATCH[model] * (large_batches - small_batches), (small, large)


def test_the_weight_average_is_torchs_ema():
    torch.manual_seed(0)
    net = build_model({"name": "schnet", "elements": [1, 6, 8], "n_features": 8, "n_interactions": 1})
    ours, theirs = WeightAverage(net, 0.9), AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    for _ in range(4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net.energy_scale.mul_(1.5)
        ours.update(net)
        theirs.update_parameters(net)
    for a, b in zip(ours.module.state_dict().values(), theirs.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    restored = WeightAverage(net, 0.9)
    restored.load_state_dict(ours.state_dict())
    assert restored.updates == 4 and int(theirs.n_averaged) == 4
