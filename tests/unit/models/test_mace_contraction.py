"""boltzmatch's evaluation of MACE's symmetric contraction against MACE's own: same values, first
and second derivatives (positions' forces and the score objectives' Hessian-vector terms) and
weight gradients, for every correlation order and output irreps MACE builds; files written back
hold MACE's classes only."""

import copy
import io

import pytest
import torch

pytest.importorskip("mace")

from e3nn import o3  # noqa: E402
from mace.modules.symmetric_contraction import SymmetricContraction  # noqa: E402

from boltzmatch.models import build_model  # noqa: E402
from boltzmatch.models.external import mace_contraction  # noqa: E402

CASES = [  # irreps_in, irreps_out, correlation, elements
    ("3x0e + 3x1o", "3x0e", 1, 2),
    ("3x0e + 3x1o + 3x2e", "3x0e + 3x1o", 2, 3),
    ("4x0e + 4x1o + 4x2e + 4x3o", "4x0e + 4x1o", 3, 3),
    ("2x0e + 2x1o + 2x2e", "2x0e + 2x1o + 2x2e", 3, 1),
    ("2x0e + 2x1o", "2x0e + 2x1o", 4, 2),
]


def _contraction(irreps_in, irreps_out, correlation, elements):
    torch.manual_seed(correlation * 10 + elements)
    module = SymmetricContraction(o3.Irreps(irreps_in), o3.Irreps(irreps_out), correlation=correlation,
                                  num_elements=elements).double()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


def _inputs(module, elements, n=7, one_hot=True):
    channels = module.contractions[0].num_features
    ell = module.irreps_in.dim // channels
    x = torch.randn(n, channels, ell, dtype=torch.float64, requires_grad=True)
    if one_hot:
        y = torch.nn.functional.one_hot(torch.arange(n) % elements, elements).double()
    else:
        y = torch.rand(n, elements, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("one_hot", [True, False])
@pytest.mark.parametrize("case", CASES, ids=[f"corr{c[2]}-{c[1].replace(' ', '')}" for c in CASES])
def test_same_values_and_derivatives_as_mace(case, one_hot):
    module = _contraction(*case)
    x, y = _inputs(module, case[3], one_hot=one_hot)
    expected = type(module).forward(module, x, y)  # MACE's own evaluation
    assert mace_contraction.accelerate(module) == 1
    got = module(x, y)
    assert got.shape == expected.shape
    scale = expected.abs().max()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12 * float(scale))

    weights = torch.randn_like(expected)
    parameters = [p for p in module.parameters() if p.requires_grad]
    first = [torch.autograd.grad((out * weights).sum(), [x, *parameters], create_graph=True)
             for out in (expected, got)]
    for a, b in zip(*first, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-11 * float(a.abs().max()))
    # second derivatives in x (what Fisher/ism/ssm objectives differentiate through)
    v = torch.randn_like(x)
    second = [torch.autograd.grad((f[0] * v).sum(), x, retain_graph=True, materialize_grads=True)[0] for f in first]
    torch.testing.assert_close(second[1], second[0], rtol=0, atol=1e-10 * float(second[0].abs().max()))


def test_mace_model_is_accelerated_and_export_holds_mace_classes_only(tmp_path):
    model = build_model({"name": "mace", "elements": [1, 6, 8], "hidden_irreps": "4x0e + 4x1o", "max_ell": 2,
                         "correlation": 3, "radial_mlp": [8], "r_max": 4.0, "dtype": "float64"})
    accelerated = [m for m in model.module.modules() if isinstance(m.__dict__.get("forward"),
                                                                 mace_contraction.FastSymmetricContraction)]
    assert len(accelerated) == 2  # one product block per interaction
    exported = model.export_module()
    buffer = io.BytesIO()
    torch.save(exported, buffer)
    assert b"boltzmatch" not in buffer.getvalue()
    assert not any("forward" in m.__dict__ for m in exported.modules())
    assert all("forward" in m.__dict__ for m in accelerated)  # the model itself keeps the fast path
    # a deep copy evaluates with its own weights, not the original's
    twin = copy.deepcopy(model.module)
    for m in twin.modules():
        if isinstance(m.__dict__.get("forward"), mace_contraction.FastSymmetricContraction):
            assert m.forward.module is m


def test_nodes_grouped_by_element_in_any_order_and_with_an_element_absent():
    module = _contraction("3x0e + 3x1o + 3x2e", "3x0e + 3x1o", 3, 3)
    channels = module.contractions[0].num_features
    x = torch.randn(9, channels, 9, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.tensor([2, 0, 2, 2, 0, 0, 2, 0, 2]), 3).double()  # no element 1
    expected = type(module).forward(module, x, y)
    mace_contraction.accelerate(module)
    torch.testing.assert_close(module(x, y), expected, rtol=0, atol=1e-12 * float(expected.abs().max()))


def test_frozen_weights_cache_follows_in_place_changes():
    """MD freezes the weights and the coefficients are cached; a later in-place change (loading a
    state dict, a fine-tuning step) must not be served from the old cache."""
    module = _contraction("3x0e + 3x1o + 3x2e", "3x0e + 3x1o", 3, 2)
    module.requires_grad_(False)
    mace_contraction.accelerate(module)
    x, y = _inputs(module, 2)
    module(x, y)  # fills the cache
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(-0.5)
    expected = type(module).forward(module, x, y)
    torch.testing.assert_close(module(x, y), expected, rtol=0, atol=1e-12 * float(expected.abs().max()))


def test_groups_counted_on_the_host_give_the_grouping_that_reads_them_back():
    """A batch's element counts (host) tell the contraction its groups: the same energies and forces as grouping
    by reading the counts back, with no read-back (tests/unit/test_training_read_backs.py counts those)."""
    from ase.build import molecule

    from boltzmatch.data import AtomsBatch
    from boltzmatch.models.base import energy_and_forces

    model = build_model({"name": "mace", "elements": [1, 6, 7, 8], "hidden_irreps": "4x0e + 4x1o", "max_ell": 2,
                         "correlation": 3, "radial_mlp": [8], "r_max": 4.0, "dtype": "float64"})
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH"), molecule("H2O"), molecule("CH4")], dtype=torch.float64)
    assert batch.element_counts == ((1, 12), (6, 3), (8, 2))  # nitrogen absent
    told = energy_and_forces(model, batch)
    read = energy_and_forces(model, AtomsBatch(**{**batch.__dict__, "numbers": batch.numbers.clone(),
                                                  "element_counts": None}))
    assert torch.equal(told[0], read[0]) and torch.equal(told[1], read[1])
