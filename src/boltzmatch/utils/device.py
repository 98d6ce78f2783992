"""Where a command computes and at which precision: ``--device auto|cpu|cuda|cuda:N``, TF32 matmuls, autocast.

One place for every command (training, fine-tuning, refine, MD, landscapes, generative models, GFlowNets),
so that the CPU path and the GPU path are the same code with another ``torch.device``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from ..errors import BoltzmatchError

T = TypeVar("T")

DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N"
PRECISIONS = ("float32", "tf32", "bf16", "fp16")
PRECISION_HELP = ("float32 (default: full precision), tf32 (CUDA matmuls in TensorFloat-32), bf16 or fp16 "
                  "(autocast of the model's forward and backward; fp16 with loss scaling)")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` of ``spec``; one-line errors name what this machine has instead."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = "auto" if spec in (None, "") else str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise BoltzmatchError(f"--device {spec}: expected {DEVICE_HELP}")
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else f"torch {torch.__version__}"
            raise BoltzmatchError(f"--device {spec}: no CUDA device is visible here ({build}); use --device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise BoltzmatchError(f"--device {spec}: this machine has {count} CUDA device(s), "
                                  f"cuda:0 … cuda:{count - 1}")
        return torch.device(spec)
    raise BoltzmatchError(f"--device {spec}: expected {DEVICE_HELP}")


def device_name(device: torch.device) -> str:
    """What a summary prints: ``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def check_precision(precision: str | None) -> str:
    precision = precision or "float32"
    if precision not in PRECISIONS:
        raise BoltzmatchError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    return precision


def torch_at_least(major: int, minor: int) -> bool:
    """Whether the installed torch is ``major.minor`` or later (pyproject allows 2.2 on)."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    return version >= (major, minor)


def adam(parameters, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch has it for the parameters' device (CUDA; the CPU from torch 2.4): one kernel
    for every tensor and its step count on the device, where the default reads each tensor's step count on the
    host. Measured on the 2-core CPU: 0.26 vs 0.76 ms per step for SchNet's 32 tensors."""
    parameters = list(parameters)
    device = parameters[0].device.type if parameters else "cpu"
    fused = device == "cuda" or (device == "cpu" and torch_at_least(2, 4))
    return torch.optim.Adam(parameters, lr=lr, fused=fused or None)


def nonzero_static_without_sync(device: torch.device) -> bool:
    """Whether ``torch.nonzero_static`` runs on ``device`` without reading back (on CUDA from torch 2.9: 2.6
    brought the kernel, 2.9 its fix for empty input)."""
    return device.type == "cpu" or (device.type == "cuda" and torch_at_least(2, 9))


def set_matmul_precision(precision: str) -> None:
    """TF32 matmuls (CUDA) for ``tf32``, and for bf16/fp16 the float32 matmuls they leave; full otherwise."""
    torch.backends.cuda.matmul.allow_tf32 = precision != "float32"
    torch.backends.cudnn.allow_tf32 = precision != "float32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16 or fp16 on ``device`` for those precisions, else nothing."""
    if precision not in ("bf16", "fp16"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (its gradients underflow without it); a disabled scaler otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


@contextlib.contextmanager
def default_device(device: torch.device) -> Iterator[None]:
    """Tensors made without a device inside go to ``device`` (``torch.set_default_device``): how the
    GFlowNet environments, written with plain factory calls, run on a GPU unchanged. Where it changes
    nothing (the CPU, already the default) it does nothing: ``set_default_device`` routes every torch call
    through a Python mode, which slowed a GFlowNet process at torchgfn's settings by ~15 %."""
    previous = torch.get_default_device()
    if torch.device(device) == previous:
        yield
        return
    torch.set_default_device(device)
    try:
        yield
    finally:  # back to the CPU: no mode at all (set_default_device("cpu") would keep one in every call)
        torch.set_default_device(None if previous == torch.device("cpu") else previous)


def max_batch_from_memory(measured: list[tuple[int, int]], free_bytes: int, headroom: float = 0.8) -> int:
    """The largest batch whose memory fits ``headroom`` × ``free_bytes`` under a linear model
    bytes = a + b·n fitted to ``measured`` (n, peak bytes) pairs (at least two sizes)."""
    if len({n for n, _ in measured}) < 2:
        raise ValueError("the memory model needs peaks measured at two batch sizes at least")
    ns = torch.tensor([float(n) for n, _ in measured], dtype=torch.float64)
    peaks = torch.tensor([float(p) for _, p in measured], dtype=torch.float64)
    design = torch.stack([torch.ones_like(ns), ns], 1)
    fixed, per_item = torch.linalg.lstsq(design, peaks[:, None]).solution[:, 0].tolist()
    per_item = max(per_item, 1.0)
    return max(int((headroom * free_bytes - max(fixed, 0.0)) / per_item + 1e-6), 0)  # 1e-6: the fit's rounding


def tensors_to(value, device: torch.device):
    """``value`` with every tensor inside (dicts, lists, tuples) moved to ``device``: checkpoint state read on
    the CPU and restored into a run on a GPU."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: tensors_to(item, device) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(tensors_to(item, device) for item in value)
    return value


def capture_cuda_graph(run: Callable[[], T], device: torch.device) -> tuple[torch.cuda.CUDAGraph, T]:
    """``run()`` captured as a CUDA graph on ``device``, and the outputs of the capture (the memory every replay
    overwrites). PyTorch's recipe: one warm-up call on a side stream (lazy set-ups, cuBLAS workspaces), then the
    capture; ``run`` must not read back from the device or copy from the host. Errors propagate (a RuntimeError
    where the capture failed): the caller decides to run without graphs."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        run()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = run()
    return graph, outputs


def graph_failure(error: BaseException) -> str:
    """The first line of a failed capture's error, for a one-line warning."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
