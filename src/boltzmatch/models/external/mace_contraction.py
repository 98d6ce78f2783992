"""MACE's symmetric contraction, evaluated in a cheaper order with the same numbers.

MACE's product basis (``mace.modules.symmetric_contraction``) maps node features ``x`` (n, C, L)
(C channels, L = (ℓ_max + 1)² components) and element attributes ``y`` (n, E) to

    out[n, c, w] = Σ_x x_x ( T1[w,x] + Σ_v x_v ( T2[w,x,v] + Σ_i x_i T3[w,x,v,i] ) )

with ``Tν[e, c, ...] = Σ_p Uν[..., p] Wν[e, p, c]`` (ν = 1 … correlation; ``Uν`` its generalised
Clebsch–Gordan tensors, ``Wν`` its weights). MACE evaluates this with einsum paths that opt_einsum
chose for a batch of 10 nodes; at MD sizes (hundreds of nodes) the first step materialises an
(n, C, (2ℓ+1)·L^(ν-1)) intermediate per element (≈ 1 GB for 64 ethanol replicas with ℓ_out = 1) and
two thirds of a MACE force call goes there on a CPU.

Here the bracket is written as one polynomial of degree ν-1 in x̃ = (1, x): the products of x̃'s
components are formed once per node and channel (153 monomials for L = 16, ν = 3), the
coefficients ``T`` are folded onto those monomials (summing the permutations of each), and one
batched matrix product per channel and element gives the bracket (nodes grouped by element when
``y`` is one-hot, as MACE's ``node_attrs`` are; otherwise every element's bracket weighted by
``y``, exact for any attributes). The last contraction with x is a multiply-and-sum. Same
function, same parameters, twice differentiable: only the order of the sums differs, so results
agree with MACE's to rounding (1e-12 relative in float64; tests).

:func:`accelerate` installs this evaluation on every ``SymmetricContraction`` of a MACE module
(as an instance attribute, so MACE's classes and files are untouched); :func:`restore` removes it
before a module is written back in MACE's own format.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class _Plan:
    """Index data for one ``Contraction`` (output irrep), built once per device."""

    def __init__(self, contraction: nn.Module, device: torch.device):
        order = int(contraction.correlation)
        top = contraction.U_tensors(order)
        self.order = order
        self.ell = int(top.shape[-2])  # L: components of the input irreps
        self.rows = top.numel() // (self.ell ** (order - 1) * top.shape[-1])  # (2ℓ_out+1)·L
        monomials = list(itertools.combinations_with_replacement(range(self.ell + 1), order - 1))
        number = {m: k for k, m in enumerate(monomials)}
        every = itertools.product(range(self.ell + 1), repeat=order - 1)
        #: for each ordered index tuple of the bracket's coefficients, its monomial
        self.fold = torch.tensor([number[tuple(sorted(t))] for t in every], dtype=torch.long, device=device)
        self.monomials = torch.tensor(monomials, dtype=torch.long, device=device).reshape(len(monomials), order - 1)
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def coefficients(self, contraction: nn.Module) -> torch.Tensor:
        """(E, C, rows, monomials): the bracket's coefficients on the monomials of x̃. Kept while
        the weights are frozen and unchanged (MD, sampling), recomputed when they can train."""
        weights = [contraction.weights_max, *contraction.weights]
        if any(w.requires_grad for w in weights) and torch.is_grad_enabled():
            self._cache = None
            return self._coefficients(contraction, weights)
        key = tuple((w.data_ptr(), w._version, w.dtype, w.device) for w in weights)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self._coefficients(contraction, weights))
        return self._cache[1]

    def _coefficients(self, contraction: nn.Module, weights: list[torch.Tensor]) -> torch.Tensor:
        # weights: correlation ν, ν-1, …, 1
        elements, _, channels = weights[0].shape
        size = self.ell + 1
        full = weights[0].new_zeros((elements, channels, self.rows) + (size,) * (self.order - 1))
        for k, weight in enumerate(weights):
            nu = self.order - k
            basis = contraction.U_tensors(nu).to(weight.dtype)
            term = torch.einsum("mp,epc->ecm", basis.reshape(-1, basis.shape[-1]), weight)
            # x̃ index 0 is the constant 1: Tν sits where its ν-1 indices are ≥ 1 and the rest are 0
            where = (slice(None),) * 3 + (slice(1, None),) * (nu - 1) + (0,) * (self.order - nu)
            full[where] = term.reshape(elements, channels, self.rows, *([self.ell] * (nu - 1)))
        full = full.reshape(elements, channels, self.rows, -1)
        return full.new_zeros(elements, channels, self.rows, len(self.monomials)).index_add(3, self.fold, full)


class FastSymmetricContraction:
    """Replaces ``forward`` of one MACE ``SymmetricContraction`` (see the module docstring)."""

    def __init__(self, module: nn.Module, groups: list | None = None):
        self.module = module
        self._plans: dict[tuple[int, str], _Plan] = {}
        #: [(y, its version, _element_groups(y))], one list shared by the contractions of a model: every
        #: interaction gets the same attributes tensor, so a batch is grouped (one read-back from a GPU) once
        self._groups = groups if groups is not None else [None]

    def _plan(self, index: int, contraction: nn.Module, device: torch.device) -> _Plan:
        key = (index, str(device))
        if key not in self._plans:
            self._plans[key] = _Plan(contraction, device)
        return self._plans[key]

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        plans = [self._plan(k, c, x.device) for k, c in enumerate(self.module.contractions)]
        coefficients = [plan.coefficients(c) for plan, c in zip(plans, self.module.contractions, strict=True)]
        cached = self._groups[0]
        if cached is None or cached[0] is not y or cached[1] != y._version:
            cached = self._groups[0] = (y, y._version, _element_groups(y))
        groups = cached[2]
        if groups is None:  # attributes that are not one-hot: every element's bracket, weighted by y
            return self._evaluate(x, plans, coefficients, y=y)
        order, inverse, blocks = groups
        ordered = x.index_select(0, order)
        outs, start = [], 0
        for element, count in blocks:  # nodes of one element: that element's coefficients only
            outs.append(self._evaluate(ordered[start:start + count], plans, coefficients, element=element))
            start += count
        return torch.cat(outs, dim=0).index_select(0, inverse)

    @staticmethod
    def _evaluate(x: torch.Tensor, plans: list[_Plan], coefficients: list[torch.Tensor], *,
                  y: torch.Tensor | None = None, element: int = 0) -> torch.Tensor:
        """Output (n, Σ C·(2ℓ+1)) of nodes ``x`` (n, C, L): with ``y``, every element's bracket
        weighted by it; without, ``element``'s coefficients for all of them."""
        n, channels, ell = x.shape
        xt = x.permute(2, 1, 0)  # (L, C, n): gathers below copy whole rows
        tilde = torch.cat([x.new_ones(1, channels, n), xt], dim=0)
        products: dict[int, torch.Tensor] = {}
        outs = []
        for plan, coefficient in zip(plans, coefficients, strict=True):  # (E, C, rows, monomials) each
            if plan.order not in products:  # the monomials of x̃, shared by the output irreps
                products[plan.order] = _monomials(tilde, plan).transpose(0, 1)  # (C, monomials, n)
            if y is None:
                bracket = torch.bmm(coefficient[element], products[plan.order])  # (C, rows, n)
            else:
                elements = coefficient.shape[0]
                stacked = coefficient.transpose(0, 1).reshape(channels, elements * plan.rows, -1)
                bracket = torch.bmm(stacked, products[plan.order]).view(channels, elements, plan.rows, n)
                bracket = (bracket * y.t().reshape(1, elements, 1, n)).sum(1)  # (C, rows, n)
            out = (bracket.view(channels, -1, ell, n) * xt.transpose(0, 1).unsqueeze(1)).sum(2)  # (C, 2ℓ+1, n)
            outs.append(out.permute(2, 0, 1).reshape(n, -1))
        return torch.cat(outs, dim=-1)


def _element_groups(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]] | None:
    """For exactly one-hot, constant element attributes (MACE's ``node_attrs``): the node order
    that groups nodes by element, its inverse, and (element, count) per group; else None."""
    if y.requires_grad or y.dim() != 2 or y.shape[0] == 0:
        return None
    hot = y.argmax(dim=1)
    one_hot = (y == torch.nn.functional.one_hot(hot, y.shape[1]).to(y.dtype)).all()
    counts = torch.zeros(y.shape[1], dtype=hot.dtype, device=hot.device).index_add_(0, hot, torch.ones_like(hot))
    is_one_hot, *counts = torch.cat([one_hot.reshape(1).to(hot.dtype), counts]).tolist()  # one read-back
    if not is_one_hot:
        return None
    order = torch.argsort(hot, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return order, inverse, [(e, c) for e, c in enumerate(counts) if c > 0]


def _monomials(tilde: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """(monomials, C, n): the products of ``plan.order - 1`` components of x̃ (L+1, C, n), in the
    order of ``plan.monomials``, by one gather of whole rows per factor (their backward is one
    row-wise scatter-add each: cheaper than slicing x̃ per row, whose backward writes a full-size
    zero tensor per slice)."""
    degree = plan.order - 1
    if degree == 0:
        return tilde.new_ones(1, *tilde.shape[1:])
    if degree == 1:
        return tilde
    q = tilde.index_select(0, plan.monomials[:, 0])
    for a in range(1, degree):
        q = q * tilde.index_select(0, plan.monomials[:, a])
    return q


def _contractions(module: nn.Module):
    try:
        from mace.modules.symmetric_contraction import Contraction, SymmetricContraction
    except ImportError:
        return
    for sub in module.modules():
        if type(sub) is SymmetricContraction and all(type(c) is Contraction for c in sub.contractions):
            yield sub


def accelerate(module: nn.Module) -> int:
    """Evaluate every MACE ``SymmetricContraction`` in ``module`` by :class:`FastSymmetricContraction`;
    returns how many. Idempotent."""
    count, groups = 0, [None]
    for sub in _contractions(module):
        if not isinstance(sub.__dict__.get("forward"), FastSymmetricContraction):
            object.__setattr__(sub, "forward", FastSymmetricContraction(sub, groups))
        count += 1
    return count


def group_by_counts(module: nn.Module, y: torch.Tensor, columns: torch.Tensor, counts: dict[int, int]) -> None:
    """Tell the contractions of ``module`` how the nodes of the one-hot attributes ``y`` group by element:
    ``columns`` (n,) each node's element column, ``counts`` {column: nodes} counted on the host. The grouping
    then reads nothing back from a GPU (it read the counts)."""
    order = torch.argsort(columns, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    groups = (order, inverse, [(e, counts[e]) for e in sorted(counts) if counts[e] > 0])
    for sub in _contractions(module):
        fast = sub.__dict__.get("forward")
        if isinstance(fast, FastSymmetricContraction):
            fast._groups[0] = (y, y._version, groups)  # one list, shared by the model's contractions
            return


def restore(module: nn.Module) -> None:
    """Give every ``SymmetricContraction`` in ``module`` MACE's own ``forward`` back (before saving)."""
    for sub in _contractions(module):
        if isinstance(sub.__dict__.get("forward"), FastSymmetricContraction):
            del sub.__dict__["forward"]
