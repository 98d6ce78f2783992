"""Tabulated radial filters: a frozen model's distance-only networks as cubic Hermite tables, for MD.

SchNet's continuous filter W(r) = filter_net(rbf(r)) · f_cut(r) depends on one distance (Å) only, yet
it is the largest part of an MD step: two dense layers and a softplus on every pair, forward and
backward, in every interaction. With the weights frozen (MD, sampling), :class:`FilterTable`
evaluates it once, in float64, on a grid of spacing ``h`` (Å) over [0, r_c] together with its exact
derivative dW/dr (forward-mode autograd), and then interpolates: a cubic Hermite spline through
values and slopes, so W is C¹ in r and the forces are continuous. This is the idea of DeePMD-kit's
model compression (tabulating the embedding net); a LAMMPS ``pair_style table`` is the classical
version.

Error (``benchmarks/md_throughput.py`` measures it on its model): O(h⁴) in W and O(h³) in dW/dr; at
the default h = 0.005 Å forces on the benchmark's ethanol SchNet differ from the exact model's
by < 1e-5 eV/Å in float64, below float32's own rounding of the exact model. The table holds no graph
to the weights: it is for forces only (no training, no second derivatives), and must be rebuilt
after the weights change — which is why only MD builds it, from a frozen model, per run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: grid spacing (Å) of the tables MD builds (see the module docstring for its error)
DEFAULT_SPACING = 0.005


class _HermiteLookup(torch.autograd.Function):
    """W(r) (n_pairs, n_columns) from the table; the backward gives dE/dr = Σ_c g_c · dW_c/dr.

    The table's rows are the power-basis coefficients a, b, c, d of every interval (row 4k + m);
    a pair in interval k at u ∈ [0, 1) reads rows 4k … 4k+3 weighted by (1, u, u², u³), its slope
    (per unit u) by (0, 1, 2u, 3u²). ``embedding_bag`` forms those weighted row sums without
    materialising the gathered rows: 2× faster than a gather and Horner's rule in float32, 3.5× in
    float64 (forward and slope, 2,304 pairs × 192 columns).
    """

    @staticmethod
    def forward(ctx, distances: torch.Tensor, table: torch.Tensor, spacing: float) -> torch.Tensor:
        t = distances.detach().to(table.dtype) / spacing
        zero_row = table.shape[0] // 4 - 1  # beyond the last node (r ≥ r_c) W = W' = 0 exactly
        k = t.floor().clamp_(0, zero_row)
        u = (t - k).clamp_(0.0, 1.0)
        rows = (4 * k.long()).unsqueeze(1) + torch.arange(4, device=k.device)  # (n_pairs, 4)
        ones = torch.ones_like(u)
        value = F.embedding_bag(rows, table, per_sample_weights=torch.stack([ones, u, u * u, u * u * u], 1),
                                mode="sum")
        ctx.save_for_backward(rows, u, table)
        ctx.spacing = spacing
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if torch.is_grad_enabled():  # create_graph=True: a second derivative was asked for
            raise RuntimeError("tabulated filters give first derivatives only (forces); train and score-match "
                               "with the model itself, not with its for_md() view")
        rows, u, table = ctx.saved_tensors
        weights = torch.stack([torch.zeros_like(u), torch.ones_like(u), 2 * u, 3 * u * u], 1)  # d(1, u, u², u³)/du
        slope = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
        return slope.mul_(grad).sum(1) / ctx.spacing, None, None


class FilterTable(nn.Module):
    """``function(distances) -> (n, n_columns)`` tabulated on [0, ``cutoff``] (Å) with spacing (Å).

    ``function`` must vanish with its slope at ``cutoff`` (a smooth cutoff), so that the table is
    exact (zero) beyond it. Called with distances (n_pairs,) in Å, it returns (n_pairs, n_columns)
    in ``dtype``, differentiable once in the distances.
    """

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor], cutoff: float, *,
                 spacing: float = DEFAULT_SPACING, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        super().__init__()
        self.spacing = float(spacing)
        self.cutoff = float(cutoff)
        n_intervals = max(1, int(round(self.cutoff / self.spacing)))
        self.spacing = self.cutoff / n_intervals
        nodes = torch.arange(n_intervals + 1, dtype=torch.float64, device=device) * self.spacing
        with torch.enable_grad():
            values, slopes = torch.func.jvp(function, (nodes,), (torch.ones_like(nodes),))
        f, m = values.detach(), slopes.detach() * self.spacing  # per unit of u = (r − r_k)/h
        # the cubic Hermite interpolant on each interval as a + b u + c u² + d u³, its coefficients formed in
        # float64: evaluating the Hermite basis in float32 instead loses ~1e-4 eV/Å in forces to cancellation
        a, b = f[:-1], m[:-1]
        c = 3 * (f[1:] - f[:-1]) - 2 * m[:-1] - m[1:]
        d = 2 * (f[:-1] - f[1:]) + m[:-1] + m[1:]
        table = torch.stack([a, b, c, d], 1)  # (n_intervals, 4, n_columns)
        table = torch.cat([table, torch.zeros_like(table[:1])])  # the zero rows that every r ≥ r_c reads
        self.register_buffer("table", table.reshape(-1, table.shape[2]).to(dtype).contiguous())  # row 4k + m

    @property
    def n_columns(self) -> int:
        return self.table.shape[1]

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        return _HermiteLookup.apply(distances, self.table, self.spacing)
