"""MACE's edge tensor product (``conv_tp``), evaluated as one batched product with the same numbers.

Every MACE interaction block forms, on each edge e, messages from the sender's features x (M channels,
irreps of ℓ₁ ≤ ℓ_max) and the edge's spherical harmonics Y, weighted per edge and channel by the radial
MLP's output w (e3nn ``TensorProduct``, connection mode ``uvu``, one ``Y`` per ℓ₂):

    m[e, u, (p, k)] = w[e, p, u] · Σ_ij C_p[i, j, k] x[e, u, i] Y[e, j]

for each path p = (ℓ₁, ℓ₂ → ℓ₃) with its Clebsch–Gordan block C_p (e3nn's normalisation and path
weight folded in), then sums the messages over each receiver and applies a linear layer. e3nn's
generated code evaluates the paths one at a time, each as broadcast multiplies over small trailing
axes, and writes each output irrep as a (channel, component) block; on a CPU about half of a MACE
force call went there (64 malonaldehyde replicas: 57 of 120 ms in the second layer's product and its
backward).

Here the sum over j, which does not depend on the channel, is done first for all paths at once
(one small matrix product, ``A[e, i, (p, k)] = Σ_j Y[e, j] C[j, i, (p, k)]``); one batched product
over i gives every path and channel, ``T[e, u, (p, k)] = Σ_i x[e, u, i] A[e, i, (p, k)]``; the weights
are spread over the columns by one matrix product and multiply T elementwise. All of it runs on
contiguous (E, M·P) arrays. The messages stay in this channel-major layout through the sum over
receivers (a sum over rows does not care how columns are ordered) and are put in e3nn's layout per
node, just before the block's linear layer: eight times fewer rows than edges here.

The constants C are read off e3nn's own tensor product (unit inputs, per dtype and device), so they
carry its normalisation exactly, and the product is checked against e3nn's on random inputs before it
is installed. Same function and parameters, twice differentiable (matrix products and multiplies),
results equal to MACE's to rounding (tests).

:func:`accelerate` installs it in every interaction block of a type whose messages go only through
that sum and ``linear`` (MACE 0.3's ``RealAgnostic*InteractionBlock``, except the non-linear one),
as instance attributes on its ``conv_tp`` and ``linear``, so MACE's and e3nn's classes and files are
untouched; :func:`restore` removes both before a module is written back.
"""

from __future__ import annotations

import torch
from torch import nn

#: MACE blocks whose ``conv_tp`` output is only summed over receivers and then passed to ``linear``
_BLOCKS = ("RealAgnosticInteractionBlock", "RealAgnosticResidualInteractionBlock",
           "RealAgnosticDensityInteractionBlock", "RealAgnosticDensityResidualInteractionBlock",
           "RealAgnosticAttResidualInteractionBlock")


class _Layout:
    """Index data of one tensor product of the supported form (see :func:`_layout`)."""

    def __init__(self, tp: nn.Module):
        self.channels = int(tp.irreps_in1[0].mul)  # M
        #: components (2ℓ+1) of each input-1 irrep, in order: x's last axis is Σ M·(2ℓ+1)
        self.in1_sizes = [ir.dim for _, ir in tp.irreps_in1]
        self.in1_components = sum(self.in1_sizes)  # L₁
        self.in2_dim = int(tp.irreps_in2.dim)
        self.paths = len(tp.instructions)
        slots = sorted(range(self.paths), key=lambda p: tp.instructions[p].i_out)
        sizes = [tp.irreps_out[tp.instructions[p].i_out].ir.dim for p in slots]
        #: path of each column (p, k), columns grouped by output irrep in e3nn's order
        column_path = [p for p, size in zip(slots, sizes, strict=True) for _ in range(size)]
        self.width = len(column_path)  # P
        self.spread = nn.functional.one_hot(torch.tensor(column_path), self.paths).t().contiguous()  # (paths, P)
        # e3nn's layout: output irrep s is an (M, 2ℓ+1) block; ours is (M, P)
        perm, start = [], 0
        for size in sizes:
            perm += [u * self.width + start + k for u in range(self.channels) for k in range(size)]
            start += size
        #: e3nn's column j is our column permutation[j]
        self.permutation = torch.tensor(perm, dtype=torch.long)


def _layout(tp: nn.Module) -> _Layout | None:
    """The layout of ``tp`` if it is MACE's edge product form: ``uvu`` paths with per-edge weights
    (M,) and one copy of each Y irrep, all input-1 irreps with the same M channels, each output
    irrep made by exactly one path; else None (e3nn's code is kept)."""
    try:
        instructions = list(tp.instructions)
        irreps_in1, irreps_in2, irreps_out = tp.irreps_in1, tp.irreps_in2, tp.irreps_out
    except AttributeError:
        return None
    if not instructions or tp.shared_weights or tp.internal_weights:
        return None
    channels = irreps_in1[0].mul
    if any(mul != channels for mul, _ in irreps_in1) or any(mul != 1 for mul, _ in irreps_in2):
        return None
    if sorted(ins.i_out for ins in instructions) != list(range(len(irreps_out))):
        return None
    for ins in instructions:
        if (ins.connection_mode != "uvu" or not ins.has_weight or tuple(ins.path_shape) != (channels, 1)
                or irreps_out[ins.i_out].mul != channels):
            return None
    return _Layout(tp)


class _Constants:
    """C, the column spread and the permutation per (dtype, device), C read off e3nn's product."""

    def __init__(self, tp: nn.Module, layout: _Layout):
        self.tp = tp
        self.layout = layout
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def get(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = (dtype, device)
        if key not in self._cache:
            lay = self.layout
            self._cache[key] = (_read_constants(self.tp, lay, dtype, device),
                                lay.spread.to(dtype=dtype, device=device), lay.permutation.to(device))
        return self._cache[key]


class FusedEdgeProduct:
    """Replaces ``forward`` of a block's ``conv_tp``: messages in the channel-major layout (E, M·P)."""

    def __init__(self, tp: nn.Module, constants: _Constants):
        self.tp = tp
        self.constants = constants

    def __call__(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is None or x.dim() != 2 or x.shape[:-1] != y.shape[:-1] or x.shape[:-1] != weight.shape[:-1]:
            raise ValueError("the fused MACE edge product takes (edges, ·) inputs and per-edge weights")
        lay = self.constants.layout
        c, spread, _ = self.constants.get(x.dtype, x.device)
        edges, m = x.shape[0], lay.channels
        a = (y @ c).view(edges, lay.in1_components, lay.width)  # (E, L₁, P)
        if len(lay.in1_sizes) == 1:
            xu = x.view(edges, m, lay.in1_components)
        else:
            blocks = x.split([m * size for size in lay.in1_sizes], dim=-1)
            xu = torch.cat([b.reshape(edges, m, size) for b, size in zip(blocks, lay.in1_sizes, strict=True)], dim=2)
        t = xu * a if lay.in1_components == 1 else torch.bmm(xu, a)  # (E, M, P)
        w = weight.view(edges, lay.paths, m).transpose(1, 2).reshape(edges * m, lay.paths) @ spread  # (E·M, P)
        return (t.view(edges * m, lay.width) * w).view(edges, m * lay.width)


class E3nnLayoutInput:
    """Replaces ``forward`` of a block's ``linear``: its input (summed messages, channel-major) is put
    in e3nn's layout first."""

    def __init__(self, linear: nn.Module, constants: _Constants):
        self.linear = linear
        self.constants = constants

    def __call__(self, features: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        permutation = self.constants.get(features.dtype, features.device)[2]
        return type(self.linear).forward(self.linear, features.index_select(-1, permutation), weight)


@torch.no_grad()
def _read_constants(tp: nn.Module, lay: _Layout, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """C (D₂, L₁·P) from e3nn's own product: x one-hot in component i of every channel, Y one-hot in
    j, all weights 1; channel 0 of output column (p, k) is then C_p[i, j, k]."""
    d2, l1, m = lay.in2_dim, lay.in1_components, lay.channels
    x = torch.zeros(l1, d2, tp.irreps_in1.dim, dtype=dtype, device=device)
    offset, component = 0, 0
    for size in lay.in1_sizes:
        for k in range(size):
            x[component, :, offset:offset + m * size].view(d2, m, size)[:, :, k] = 1.0
            component += 1
        offset += m * size
    y = torch.eye(d2, dtype=dtype, device=device).expand(l1, d2, d2)
    w = torch.ones(l1 * d2, tp.weight_numel, dtype=dtype, device=device)
    out = type(tp).forward(tp, x.reshape(l1 * d2, -1), y.reshape(l1 * d2, d2), w)
    ours = out.new_zeros(l1 * d2, m * lay.width)
    ours[:, lay.permutation.to(device)] = out  # e3nn's layout to (i, j, u, P)
    channel0 = ours.view(l1, d2, m, lay.width)[:, :, 0, :]  # (L₁, D₂, P)
    return channel0.permute(1, 0, 2).reshape(d2, l1 * lay.width).contiguous()


def _agrees(tp: nn.Module, fused: FusedEdgeProduct) -> bool:
    """Fused and e3nn products agree on random inputs, in the dtype of e3nn's constants (1e-9
    relative in float64, 1e-5 in float32)."""
    dtype = next((b.dtype for b in tp.buffers() if b.is_floating_point()), torch.get_default_dtype())
    device = next((b.device for b in tp.buffers()), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    x, y, w = (torch.randn(5, n, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
               for n in (tp.irreps_in1.dim, tp.irreps_in2.dim, tp.weight_numel))
    with torch.no_grad():
        reference = type(tp).forward(tp, x, y, w)
        ours = fused(x, y, w).index_select(-1, fused.constants.get(dtype, device)[2])
    tolerance = 1e-9 if dtype == torch.float64 else 1e-5
    return bool((ours - reference).abs().max() <= tolerance * reference.abs().max().clamp_min(1.0))


def _blocks(module: nn.Module):
    """MACE interaction blocks of the supported types (e3nn product and linear, no fused kernels)."""
    try:
        from e3nn.o3 import Linear, TensorProduct
        from mace.modules import blocks
    except ImportError:
        return
    kinds = tuple(getattr(blocks, name) for name in _BLOCKS if hasattr(blocks, name))
    for sub in module.modules():
        if (type(sub) in kinds and not hasattr(sub, "conv_fusion") and isinstance(getattr(sub, "conv_tp", None),
                                                                                    TensorProduct)
                and isinstance(getattr(sub, "linear", None), Linear)):
            yield sub


def accelerate(module: nn.Module) -> int:
    """Evaluate the edge product of every supported MACE interaction block in ``module`` by
    :class:`FusedEdgeProduct` (and put its messages back in e3nn's layout before ``linear``);
    returns how many blocks. Idempotent."""
    count = 0
    for block in _blocks(module):
        if isinstance(block.conv_tp.__dict__.get("forward"), FusedEdgeProduct):
            count += 1
            continue
        layout = _layout(block.conv_tp)
        if layout is None or block.linear.irreps_in.dim != block.conv_tp.irreps_out.dim:
            continue
        constants = _Constants(block.conv_tp, layout)
        fused = FusedEdgeProduct(block.conv_tp, constants)
        if _agrees(block.conv_tp, fused):
            object.__setattr__(block.conv_tp, "forward", fused)
            object.__setattr__(block.linear, "forward", E3nnLayoutInput(block.linear, constants))
            count += 1
    return count


def restore(module: nn.Module) -> None:
    """Give every accelerated block's ``conv_tp`` and ``linear`` e3nn's own ``forward`` back."""
    for block in _blocks(module):
        if isinstance(block.conv_tp.__dict__.get("forward"), FusedEdgeProduct):
            del block.conv_tp.__dict__["forward"]
            del block.linear.__dict__["forward"]
