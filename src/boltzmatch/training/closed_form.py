"""Closed-form fits of the linear potential U_θ = θ·φ(x), accumulated batch by batch.

With G = ∂φ/∂x (per structure, 3N × D) and F_θ = −Gθ, every objective below is quadratic in θ;
the normal equations A θ = b are summed over batches, so no design matrix is held in memory:

* ``energy`` (ridge least squares): A = Σ φφᵀ, b = Σ φ E.
* ``fisher`` (force matching with β² factors): A = Σ β² GᵀG, b = −Σ β² GᵀF_ref.
* ``ism`` (implicit score matching): A = Σ β² GᵀG, b = Σ β Δφ, i.e. θ = (βE[GᵀG])⁻¹E[Δφ]
  for one temperature.

Forces and scores do not see the per-element energy offsets (their G columns vanish); for
``fisher`` and ``ism`` those are then fitted to the energies when the data has them (least
squares on the residual), else left at zero.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..data.packed import PackedStructures
from ..errors import BoltzmatchError
from ..models.linear import LinearPotential
from ..objectives.score import structure_beta

CLOSED_FORM_OBJECTIVES = ("energy", "fisher", "ism")


class IllConditionedWarning(UserWarning):
    """The normal equations are close to singular; consider ``ridge``."""


def _solve(A: torch.Tensor, b: torch.Tensor, active: torch.Tensor, ridge: float) -> tuple[torch.Tensor, float]:
    sub = A[active][:, active]
    scale = float(sub.diagonal().abs().mean()) or 1.0
    sub = sub + ridge * scale * torch.eye(sub.shape[0], dtype=A.dtype)
    condition = float(torch.linalg.cond(sub))
    if not np.isfinite(condition) or condition > 1e12:
        warnings.warn(f"closed-form system is ill-conditioned (condition number {condition:.3g}); "
                      "pass a ridge (e.g. 1e-8) or fewer radial functions", IllConditionedWarning, stacklevel=3)
    theta = torch.zeros_like(b)
    theta[active] = torch.linalg.lstsq(sub, b[active].unsqueeze(1)).solution.squeeze(1)
    return theta, condition


def fit_closed_form(
    model: LinearPotential,
    packed: PackedStructures,
    indices: np.ndarray,
    *,
    objective: str,
    temperature: float | None = None,
    ridge: float = 0.0,
    batch_size: int = 256,
) -> dict:
    """Set ``model.theta`` to the exact minimiser of ``objective`` on ``indices``; returns diagnostics.

    ``ridge`` is relative: λ = ridge · mean(diag A). Computation in float64.
    """
    if not isinstance(model, LinearPotential):
        raise BoltzmatchError("the closed-form solver fits the linear potential only (--model linear)")
    if objective not in CLOSED_FORM_OBJECTIVES:
        raise BoltzmatchError(f"no closed form for objective {objective!r}; expected one of "
                              f"{', '.join(CLOSED_FORM_OBJECTIVES)}")
    full = packed.full
    if objective == "energy" and full.energy is None:
        raise BoltzmatchError("objective energy needs energies in the data")
    if objective == "fisher" and full.forces is None:
        raise BoltzmatchError("objective fisher needs reference forces in the data")
    D = model.n_features
    A = torch.zeros(D, D, dtype=torch.float64)
    b = torch.zeros(D, dtype=torch.float64)
    E_phi = torch.zeros(D, D, dtype=torch.float64)  # for the offsets of score fits
    E_b = torch.zeros(D, dtype=torch.float64)
    offsets = model.element_offset_slice()
    original_dtype = model.theta.dtype
    model.double()
    for start in range(0, len(indices), batch_size):
        batch = packed.batch(indices[start:start + batch_size]).to(dtype=torch.float64)
        if objective == "energy" or full.energy is not None:
            with torch.no_grad():
                phi = model.features(batch)
        if objective == "energy":
            A += phi.T @ phi
            b += phi.T @ batch.energy
            continue
        beta = structure_beta(batch, temperature)
        beta_atoms = beta[batch.structure_index]
        G = model.descriptor_jacobian(batch)  # (n_atoms, 3, D)
        A += torch.einsum("a,acd,ace->de", beta_atoms**2, G, G)
        if objective == "fisher":
            b -= torch.einsum("a,acd,ac->d", beta_atoms**2, G, batch.forces)
        else:
            b += (beta[:, None] * model.descriptor_laplacian(batch)).sum(0)
        if full.energy is not None:
            E_phi += phi.T @ phi
            E_b += phi.T @ batch.energy
    active = A.diagonal() > 0  # element pairs absent from the data get θ = 0
    if objective != "energy":
        active[offsets] = False  # forces and scores do not see constant offsets
    theta, condition = _solve(A, b, active, ridge)
    if objective != "energy" and full.energy is not None:
        # offsets: least squares of the energy residual on the element counts
        rest = torch.ones(D, dtype=torch.bool)
        rest[offsets] = False
        residual = E_b[offsets] - E_phi[offsets][:, rest] @ theta[rest]
        counts = E_phi[offsets][:, offsets]
        theta[offsets] = torch.linalg.lstsq(counts, residual.unsqueeze(1)).solution.squeeze(1)
    model.to(original_dtype)
    with torch.no_grad():
        model.theta.copy_(theta.to(original_dtype))
    return {"objective": objective, "condition_number": condition, "n_structures": int(len(indices)),
            "n_parameters": int(active.sum())}
