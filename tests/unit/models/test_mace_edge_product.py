"""boltzmatch's fused evaluation of MACE's edge tensor product against e3nn's: same values, first and
second derivatives for the tensor products MACE builds; a whole MACE model gives the same energies,
forces and Hessian-vector products with and without it; files written back hold MACE's classes only;
tensor products of other forms keep e3nn's code."""

import copy
import io

import pytest
import torch

pytest.importorskip("mace")

from e3nn import o3  # noqa: E402
from mace.modules.irreps_tools import tp_out_irreps_with_instructions  # noqa: E402

from boltzmatch.data import AtomsBatch  # noqa: E402
from boltzmatch.models import build_model, energy_and_forces  # noqa: E402
from boltzmatch.models.external import mace_edge_product  # noqa: E402
from helpers import external_test_structures as structures  # noqa: E402

CASES = [  # node irreps, edge spherical harmonics, target irreps (as MACE's interaction blocks build them)
    ("4x0e", "1x0e + 1x1o + 1x2e + 1x3o", "4x0e + 4x1o + 4x2e + 4x3o"),
    ("4x0e + 4x1o", "1x0e + 1x1o + 1x2e + 1x3o", "4x0e + 4x1o + 4x2e + 4x3o"),
    ("3x0e + 3x1o + 3x2e", "1x0e + 1x1o + 1x2e", "3x0e + 3x1o"),
]
MODEL = {"name": "mace", "elements": [1, 6, 8, 29], "hidden_irreps": "4x0e + 4x1o", "max_ell": 2, "correlation": 2,
         "radial_mlp": [8], "r_max": 4.0, "dtype": "float64"}


def _tensor_product(node, edge, target):
    irreps_mid, instructions = tp_out_irreps_with_instructions(o3.Irreps(node), o3.Irreps(edge), o3.Irreps(target))
    return o3.TensorProduct(o3.Irreps(node), o3.Irreps(edge), irreps_mid, instructions=instructions,
                            shared_weights=False, internal_weights=False).double()


def _fused(tp):
    layout = mace_edge_product._layout(tp)
    assert layout is not None
    return mace_edge_product.FusedEdgeProduct(tp, mace_edge_product._Constants(tp, layout))


@pytest.mark.parametrize("case", CASES, ids=[c[0].replace(" ", "") for c in CASES])
def test_same_values_and_derivatives_as_e3nn(case):
    torch.manual_seed(0)
    tp = _tensor_product(*case)
    fused = _fused(tp)
    edges = 11
    x = torch.randn(edges, tp.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
    y = torch.randn(edges, tp.irreps_in2.dim, dtype=torch.float64, requires_grad=True)
    w = torch.randn(edges, tp.weight_numel, dtype=torch.float64, requires_grad=True)
    expected = tp(x, y, w)
    permutation = fused.constants.get(torch.float64, torch.device("cpu"))[2]
    got = fused(x, y, w).index_select(-1, permutation)  # to e3nn's layout
    scale = float(expected.detach().abs().max())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12 * scale)

    probe = torch.randn_like(expected)
    first = [torch.autograd.grad((out * probe).sum(), (x, y, w), create_graph=True) for out in (expected, got)]
    for a, b in zip(*first, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-11 * float(a.abs().max()))
    # second derivatives (the score objectives differentiate forces again)
    v = torch.randn_like(y)
    second = [torch.autograd.grad((f[1] * v).sum(), (x, y, w), materialize_grads=True) for f in first]
    for a, b in zip(*second, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * max(float(a.abs().max()), 1.0))


def test_whole_model_same_energies_forces_and_hessian_vector_products():
    torch.manual_seed(1)
    fast = build_model(MODEL)
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(0.1 * torch.randn_like(p))
    plain = copy.deepcopy(fast)
    assert sum(isinstance(m.__dict__.get("forward"), mace_edge_product.FusedEdgeProduct)
               for m in fast.module.modules()) == 2  # one edge product per interaction block
    mace_edge_product.restore(plain.module)
    assert not any(isinstance(m.__dict__.get("forward"), mace_edge_product.FusedEdgeProduct)
                   for m in plain.module.modules())

    batch = AtomsBatch.from_atoms(structures(), dtype=torch.float64)
    results = []
    for model in (plain, fast):
        positions = batch.positions.clone().requires_grad_(True)
        energy, forces = energy_and_forces(model, batch.with_positions(positions), create_graph=True)
        v = torch.randn_like(positions, generator=torch.Generator().manual_seed(2))
        hvp = torch.autograd.grad((forces * v).sum(), positions)[0]
        results.append((energy.detach(), forces.detach(), hvp))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-11 * max(float(a.abs().max()), 1.0))


def test_export_holds_mace_classes_only_and_copies_use_their_own_weights():
    model = build_model(MODEL)
    exported = model.export_module()
    buffer = io.BytesIO()
    torch.save(exported, buffer)
    assert b"boltzmatch" not in buffer.getvalue()
    assert not any("forward" in m.__dict__ for m in exported.modules())
    twin = copy.deepcopy(model.module)
    fused = [m for m in twin.modules() if isinstance(m.__dict__.get("forward"), mace_edge_product.FusedEdgeProduct)]
    assert fused and all(m.forward.tp is m for m in fused)


def test_other_tensor_products_keep_e3nn_code():
    shared = o3.TensorProduct("4x0e + 4x1o", "1x0e + 1x1o", "4x0e", [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True)],
                              shared_weights=True)
    assert mace_edge_product._layout(shared) is None
    full = o3.FullyConnectedTensorProduct("4x0e + 4x1o", "2x0e", "4x0e + 4x1o", shared_weights=False)
    assert mace_edge_product._layout(full) is None  # 'uvw' paths, two copies of the second input
