"""The stress term of the supervised loss: the virial-per-atom MSE (eV²/atom²) of crystals, 0 at its exact
solution, its value by hand, parameter gradients through the strain derivative against finite differences, and
the stress errors that validation reports."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from boltzmatch.data import AtomsBatch
from boltzmatch.data.labels import attach_labels
from boltzmatch.data.packed import PackedStructures
from boltzmatch.models import build_model
from boltzmatch.models.base import energy_forces_and_stress, voigt
from boltzmatch.models.packed_pairs import PackedPairs
from boltzmatch.objectives.registry import make_objective
from boltzmatch.objectives.supervised import SupervisedLoss
from boltzmatch.training.errors_accumulator import ErrorAccumulator
from boltzmatch.units import GPA_PER_EV_A3


def _model():
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "cutoff": 4.0, "n_features": 8, "n_interactions": 1, "dtype": "float64"})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def _crystals(model, shift=0.0):
    """Two Cu crystals (a primitive cell of 1 atom, a sheared cubic cell of 4), labelled with the model's own
    energy, forces and stress; ``shift`` (eV/Å³) added to the first crystal's xx stress."""
    crystals = [bulk("Cu", "fcc", a=3.6), bulk("Cu", "fcc", a=3.7, cubic=True)]
    crystals[1].cell[0, 1] += 0.2
    for i, atoms in enumerate(crystals):
        atoms.rattle(0.05, seed=i)
    batch = AtomsBatch.from_atoms(crystals, dtype=torch.float64)
    energy, forces, stress = energy_forces_and_stress(model, batch)
    labels = voigt(stress).detach().numpy().copy()
    labels[0, 0] += shift
    counts = [len(a) for a in crystals]
    forces = np.split(forces.detach().numpy(), np.cumsum(counts)[:-1])
    for atoms, e, f, s in zip(crystals, energy.tolist(), forces, labels, strict=True):
        attach_labels(atoms, e, f, s)
    return crystals


def test_the_loss_is_zero_at_its_exact_solution_and_the_virial_error_by_hand():
    model = _model()
    loss_fn = SupervisedLoss("energy-forces", 1.0, 100.0, stress_weight=3.0)
    assert loss_fn.needs == ("energy", "forces", "stress")
    exact = AtomsBatch.from_atoms(_crystals(model), dtype=torch.float64)
    loss, metrics = loss_fn(model, exact)
    assert float(loss.detach()) < 1e-20 and float(metrics["stress_loss"]) < 1e-20
    delta = 0.01  # eV/Å³ on one component of the first crystal (1 atom, volume V)
    crystals = _crystals(model, shift=delta)
    loss, metrics = loss_fn(model, AtomsBatch.from_atoms(crystals, dtype=torch.float64))
    volume_per_atom = crystals[0].get_volume() / len(crystals[0])
    expected = (delta * volume_per_atom) ** 2 / 6 / 2  # one of 6 components, mean over 2 crystals
    assert float(metrics["stress_loss"]) == pytest.approx(expected, rel=1e-9)
    assert float(loss.detach()) == pytest.approx(3.0 * expected, rel=1e-6)


def test_the_fisher_divergence_weighs_the_stress_as_it_weighs_forces():
    """fisher's stress term: 0 at the exact solution; otherwise ``stress_weight`` × β²·3N/200 × the virial MSE,
    the balance of stress to forces that energy-forces has (force weight 100)."""
    from ase import units

    model = _model()
    fisher = make_objective("fisher", temperature=600.0, energy_weight=0.0, force_weight=0.0, stress_weight=10.0)
    assert fisher.needs == ("forces", "stress")
    loss, _ = fisher(model, AtomsBatch.from_atoms(_crystals(model), dtype=torch.float64))
    assert float(loss.detach()) < 1e-20
    delta = 0.01
    crystals = _crystals(model, shift=delta)
    loss, metrics = fisher(model, AtomsBatch.from_atoms(crystals, dtype=torch.float64))
    beta = 1.0 / (units.kB * 600.0)
    virial = (delta * crystals[0].get_volume()) ** 2 / 6  # the first crystal has 1 atom
    expected = 10.0 * beta**2 * 3 / 200 * virial / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert float(metrics["stress_loss"]) == pytest.approx(virial / 2, rel=1e-9)


def test_fisher_cd_weighs_the_stress_in_its_fisher_term(tmp_path):
    """fisher-cd (refine --selection none) keeps the stress term in its Fisher part: with the CD weight at 0 its
    loss is fisher's."""
    from boltzmatch.data import write_structures

    model = _model()
    crystals = _crystals(model, shift=0.01)
    write_structures(tmp_path / "negatives.xyz", crystals)
    options = {"negatives": str(tmp_path / "negatives.xyz"), "weight": 0.0}
    fisher_cd = make_objective("fisher-cd", temperature=600.0, cd_options=options, stress_weight=10.0)
    fisher = make_objective("fisher", temperature=600.0, energy_weight=0.0, force_weight=0.0, stress_weight=10.0)
    assert fisher_cd.needs == ("forces", "stress")
    batch = AtomsBatch.from_atoms(crystals, dtype=torch.float64)
    loss, metrics = fisher_cd(model, batch)
    assert float(metrics["stress_loss"]) > 0
    assert float(loss.detach()) == pytest.approx(float(fisher(model, batch)[0].detach()), rel=1e-12)


def test_parameter_gradients_through_the_stress_match_finite_differences():
    model = _model()
    batch = AtomsBatch.from_atoms(_crystals(model, shift=0.02), dtype=torch.float64)
    loss_fn = SupervisedLoss("energy-forces", 0.0, 0.0, stress_weight=1.0)
    parameter = next(p for name, p in model.named_parameters() if "filter" in name or "interaction" in name)
    loss, _ = loss_fn(model, batch)
    (grad,) = torch.autograd.grad(loss, parameter)
    index = tuple(int(i) for i in np.unravel_index(int(grad.abs().argmax()), grad.shape))
    h = 1e-6
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            parameter[index] += sign * h
        values.append(float(loss_fn(model, batch)[0].detach()))
        with torch.no_grad():
            parameter[index] -= sign * h
    assert abs(float(grad[index])) > 1e-6
    assert float(grad[index]) == pytest.approx((values[0] - values[1]) / (2 * h), rel=1e-5)


def test_the_data_sets_pairs_give_the_stress_of_a_fresh_search(monkeypatch):
    from boltzmatch.models import neighbors

    model = _model()
    crystals = _crystals(model)
    packed = PackedStructures(crystals, dtype=torch.float64)
    packed.pairs = PackedPairs.search(packed, model.cutoff)
    with_pairs, without = packed.batch([0, 1]), packed.batch([0, 1], with_pairs=False)
    searches = []
    search = neighbors.find_pairs
    monkeypatch.setattr(neighbors, "find_pairs", lambda *a: searches.append(1) or search(*a))
    _, forces_a, stress_a = energy_forces_and_stress(model, with_pairs)
    assert not searches  # the strained batch took the data set's pairs
    _, forces_b, stress_b = energy_forces_and_stress(model, without)
    torch.testing.assert_close(stress_a, stress_b, rtol=0, atol=1e-12)
    torch.testing.assert_close(forces_a, forces_b, rtol=0, atol=1e-12)


def test_validation_reports_the_stress_error_in_gpa():
    model = _model()
    crystals = _crystals(model, shift=0.006)
    batch = AtomsBatch.from_atoms(crystals, dtype=torch.float64)
    energy, forces, stress = energy_forces_and_stress(model, batch)
    acc = ErrorAccumulator()
    acc.add(batch, energy, forces, None, stress)
    result = acc.result()
    assert result["stress_mae_GPa"] == pytest.approx(GPA_PER_EV_A3 * 0.006 / 12, rel=1e-6)
    assert result["stress_rmse_GPa"] == pytest.approx(GPA_PER_EV_A3 * 0.006 / np.sqrt(12), rel=1e-6)


def test_a_stress_weight_goes_with_supervised_objectives_and_fisher_only():
    from boltzmatch.errors import BoltzmatchError

    with pytest.raises(BoltzmatchError, match="stress-weight goes with the objectives energy, forces, energy-forces, "
                                              "fisher, fisher-cd, got objective ism"):
        make_objective("ism", temperature=300, energy_weight=0, force_weight=0, stress_weight=1.0)
    with pytest.raises(BoltzmatchError, match="stress weight must be 0 or more"):
        SupervisedLoss(stress_weight=-1.0)


@pytest.mark.parametrize(("options", "message"), [
    ({"stress_weight": -1.0}, "stress_weight must be 0 or more"),
    ({"stress_weight": 1.0, "objective": "dsm"}, "stress-weight goes with the objectives"),
    ({"stress_weight": 1.0, "solver": "closed-form"}, "closed form fits no stress"),
])
def test_training_settings_refuse_a_stress_weight_that_cannot_apply(options, message):
    from boltzmatch.errors import BoltzmatchError
    from boltzmatch.training.settings import TrainSettings

    with pytest.raises(BoltzmatchError, match=message):
        TrainSettings(data="crystals.xyz", **options).check()


def test_runs_from_before_training_on_stress_resume_without_the_term():
    from boltzmatch.training.settings import TrainSettings

    assert TrainSettings.from_config({"data": "crystals.xyz", "objective": "energy-forces"}).stress_weight == 0.0
    assert TrainSettings.from_config({"data": "crystals.xyz", "stress_weight": 10.0}).stress_weight == 10.0


def _mixed(model, shift=0.0):
    """The two crystals of :func:`_crystals` (the first's xx stress off by ``shift`` eV/Å³), a copy of the second
    without its stress label, and a labelled water molecule: a set where only some structures carry a stress."""
    from ase.build import molecule

    crystals = _crystals(model, shift=shift)
    unlabelled = crystals[1].copy()
    unlabelled.rattle(0.05, seed=7)
    water = molecule("H2O")
    water.cell = np.zeros((3, 3))
    batch = AtomsBatch.from_atoms([unlabelled, water], dtype=torch.float64)
    energy, forces, _ = energy_forces_and_stress(model, batch)
    counts = np.cumsum([len(unlabelled)])
    for atoms, e, f in zip((unlabelled, water), energy.tolist(), np.split(forces.detach().numpy(), counts),
                           strict=True):
        attach_labels(atoms, e + 0.3, f)  # energy and forces labels, no stress
    return [*crystals, unlabelled, water]


def test_structures_without_a_stress_add_nothing_to_the_term_or_its_gradient():
    """A set where some structures carry a stress (refine --pressure's labels beside stress-free frames, crystals
    beside molecules): NaN rows in the batch, a term that is the mean over all structures of each one's error (0
    without a label), and gradients that are finite and are those of the labelled structures alone."""
    model = _model()
    structures = _mixed(model, shift=0.01)
    batch = AtomsBatch.from_atoms(structures, dtype=torch.float64)
    assert batch.stress_labelled.tolist() == [True, True, False, False]
    assert torch.isnan(batch.stress[2:]).all()
    stress_only = SupervisedLoss("energy-forces", 0.0, 0.0, stress_weight=1.0)
    loss, metrics = stress_only(model, batch)
    volume_per_atom = structures[0].get_volume() / len(structures[0])
    expected = (0.01 * volume_per_atom) ** 2 / 6 / 4  # one component of one crystal, mean over all 4 structures
    assert float(metrics["stress_loss"]) == pytest.approx(expected, rel=1e-9)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    labelled = AtomsBatch.from_atoms(structures[:2], dtype=torch.float64)
    reference = torch.autograd.grad(stress_only(model, labelled)[0], list(model.parameters()), allow_unused=True)
    for g, r in zip(grads, reference, strict=True):
        if r is None:
            continue
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, r * 2 / 4, rtol=1e-9, atol=1e-14)  # 2 labelled of 4 structures


def test_error_sums_count_the_structures_that_carry_a_stress(tmp_path):
    from dataclasses import replace

    model = _model()
    structures = _mixed(model, shift=0.006)
    batch = AtomsBatch.from_atoms(structures, dtype=torch.float64)
    energy, forces, stress = energy_forces_and_stress(model, batch)
    for weighted in (batch, replace(batch, weight=torch.ones(4, dtype=torch.float64))):
        acc = ErrorAccumulator()
        acc.add(weighted, energy, forces, None, stress)
        result = acc.result()
        assert result["stress_mae_GPa"] == pytest.approx(GPA_PER_EV_A3 * 0.006 / 12, rel=1e-6)  # 12 labelled values
    back = batch.to_atoms()
    assert [a.calc.results.get("stress") is not None for a in back] == [True, True, False, False]


def test_a_set_with_some_stress_labels_trains_on_them_by_default(tmp_path):
    from boltzmatch.data import write_structures
    from boltzmatch.data.summary import format_summary, summarize
    from boltzmatch.training.prepare import _objectives
    from boltzmatch.training.settings import DEFAULT_STRESS_WEIGHT, TrainSettings

    structures = _mixed(_model())
    path = tmp_path / "mixed.xyz"
    write_structures(path, structures)
    settings = TrainSettings(data=str(path), objective="energy-forces")
    _objectives(settings)
    assert settings.stress_weight == DEFAULT_STRESS_WEIGHT
    assert "stress (2 of 4)" in format_summary(summarize(structures))
