"""FunctionalAdam (gflownet/adam.py) against torch.optim.Adam(fused=True): the same parameters to the bit,
checkpoints interchangeable, and no torch._dynamo import."""

import subprocess
import sys

import torch
from torch import nn

from boltzmatch.gflownet.adam import FunctionalAdam


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def _groups(model: nn.Module, scale: nn.Parameter) -> list[dict]:
    return [{"params": list(model.parameters()), "lr": 1e-2}, {"params": [scale], "lr": 0.1}]


def _train(model: nn.Module, scale: nn.Parameter, optimizer, steps: range) -> None:
    for step in steps:
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
        loss = ((model(x) * scale - 1) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def test_same_updates_as_torch_adam_fused():
    ours, theirs = _model(0), _model(0)
    scale_ours, scale_theirs = nn.Parameter(torch.tensor(0.5)), nn.Parameter(torch.tensor(0.5))
    _train(ours, scale_ours, FunctionalAdam(_groups(ours, scale_ours)), range(20))
    _train(theirs, scale_theirs, torch.optim.Adam(_groups(theirs, scale_theirs), fused=True), range(20))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(scale_ours, scale_theirs)
    assert not torch.equal(next(ours.parameters()), next(_model(0).parameters()))  # it did train


def test_checkpoints_load_in_either_direction():
    reference, scale_ref = _model(0), nn.Parameter(torch.tensor(0.5))
    _train(reference, scale_ref, torch.optim.Adam(_groups(reference, scale_ref), fused=True), range(10))
    torch_optimizer_state = None
    for resumed_kind in ("ours_from_torch", "torch_from_ours"):
        first, scale = _model(0), nn.Parameter(torch.tensor(0.5))
        torch_adam = lambda g: torch.optim.Adam(g, fused=True)  # noqa: E731
        make_first = torch_adam if resumed_kind == "ours_from_torch" else FunctionalAdam
        optimizer = make_first(_groups(first, scale))
        _train(first, scale, optimizer, range(5))
        torch_optimizer_state = optimizer.state_dict()
        second, scale2 = _model(1), nn.Parameter(torch.tensor(0.0))
        second.load_state_dict(first.state_dict())
        scale2.data.copy_(scale.data)
        make_second = FunctionalAdam if resumed_kind == "ours_from_torch" else torch_adam
        resumed = make_second(_groups(second, scale2))
        resumed.load_state_dict(torch_optimizer_state)
        _train(second, scale2, resumed, range(5, 10))
        for a, b in zip(second.parameters(), reference.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), resumed_kind
        assert torch.allclose(scale2, scale_ref, rtol=0, atol=1e-6)


def test_does_not_import_dynamo():
    code = ("import sys, torch; from boltzmatch.gflownet.adam import FunctionalAdam; "
            "p = torch.nn.Parameter(torch.ones(3)); o = FunctionalAdam([{'params': [p], 'lr': 0.1}]); "
            "p.sum().backward(); o.step(); print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
