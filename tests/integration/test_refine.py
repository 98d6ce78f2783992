"""`refine` on real xTB ethanol with a barely trained SchNet: a round is deterministic for a seed,
a kill during labelling loses no label and the resumed run labels only the rest, and reaches the
uninterrupted result."""

import importlib
import json

import pytest
import yaml
from ase.io import read

import boltzmatch
from boltzmatch.cli.main import main
from boltzmatch.errors import BoltzmatchError
from boltzmatch.workflows.refine import DEFAULT_HUBER_DELTA, format_refine_summary, resolve_huber_delta

SETTINGS = dict(rounds=1, replicas=4, time=0.2, label_budget=6, window=3, epochs=2, temperature=500.0, seed=3,
                progress=False)


@pytest.fixture(scope="module")
def rough_schnet(ethanol_xtb, tmp_path_factory):
    out = tmp_path_factory.mktemp("refine") / "schnet"
    boltzmatch.train(ethanol_xtb, out=out, model="schnet", config={"n_features": 16, "n_interactions": 1},
                     epochs=3, progress=False)
    return out


def outcome(out):
    rows = json.loads((out / "refine.json").read_text())["rounds"]
    labels = read(out / "round_00" / "labels.xyz", index=":")
    return [{k: v for k, v in r.items() if k != "model"} for r in rows], [a.positions.tolist() for a in labels]


def test_a_round_is_deterministic_and_records_every_number(rough_schnet, ethanol_xtb, tmp_path, capsys):
    boltzmatch_args = [str(rough_schnet), "--data", str(ethanol_xtb), "--rounds", "1", "--replicas", "4", "--time",
                       "0.2", "--label-budget", "6", "--window", "3", "--epochs", "2", "--seed", "3", "--test",
                       str(ethanol_xtb), "--quiet"]
    assert main(["refine", *boltzmatch_args, "--out", str(tmp_path / "a")]) == 0
    assert "median collapse (ps)" in capsys.readouterr().out
    assert main(["refine", *boltzmatch_args, "--out", str(tmp_path / "b")]) == 0
    rows, labels = outcome(tmp_path / "a")
    assert (rows, labels) == outcome(tmp_path / "b")
    assert [r["labels_used"] for r in rows] == [0, 6] and len(labels) == 6
    assert all(r["force_mae_meV_A"] > 0 for r in rows)
    labelled = read(tmp_path / "a" / "round_00" / "labels.xyz", index=":")
    assert all(a.get_forces().shape == (9, 3) for a in labelled)  # reference forces, from xTB
    assert (tmp_path / "a" / "refine.png").stat().st_size > 0


def test_a_kill_while_labelling_loses_nothing_and_resumes_to_the_same_result(rough_schnet, ethanol_xtb, tmp_path,
                                                                              monkeypatch):
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "whole", **SETTINGS)

    generate_module = importlib.import_module("boltzmatch.data.reference_md")

    real = generate_module.make_calculator
    calls = []

    def counting(name, system, fail_after=None):
        calculator = real(name, system)
        original = calculator.calculate

        def calculate(*args, **kwargs):
            calls.append(1)
            if fail_after is not None and len(calls) > fail_after:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        calculator.calculate = calculate
        return calculator

    monkeypatch.setattr(generate_module, "make_calculator", lambda n, s: counting(n, s, fail_after=2))
    with pytest.raises(KeyboardInterrupt):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "killed", **SETTINGS)
    assert len(read(tmp_path / "killed" / "round_00" / "labels.xyz", index=":")) == 2
    calls.clear()
    monkeypatch.setattr(generate_module, "make_calculator", lambda n, s: counting(n, s))
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "killed", **SETTINGS)
    assert len(calls) == 4  # only the labels the kill left undone
    assert outcome(tmp_path / "killed") == outcome(tmp_path / "whole")


def test_a_frame_the_reference_cannot_compute_is_left_out_not_fatal(rough_schnet, ethanol_xtb, tmp_path, monkeypatch):
    """GFN2-xTB's SCF does not converge on some frames a collapse tore apart (seen on malonaldehyde: the whole
    refine run died with tblite's CalculationFailed). Such a frame keeps its place in labels.xyz without labels,
    with its reason, and fine-tuning goes on with the others."""
    from ase.calculators.calculator import CalculationFailed

    from boltzmatch.data.labelling import LABEL_FAILED

    generate_module = importlib.import_module("boltzmatch.data.reference_md")
    real, calls = generate_module.make_calculator, []

    def failing_second(name, system):
        calculator = real(name, system)
        original = calculator.calculate

        def calculate(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise CalculationFailed("SCF not converged in 250 cycles")
            return original(*args, **kwargs)

        calculator.calculate = calculate
        return calculator

    monkeypatch.setattr(generate_module, "make_calculator", failing_second)
    with pytest.warns(UserWarning, match=r"1 of 6 frames could not be labelled \(xtb: SCF not converged"):
        summary = boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **SETTINGS)
    labels = read(tmp_path / "r" / "round_00" / "labels.xyz", index=":")
    assert len(labels) == 6 and [LABEL_FAILED in a.info for a in labels] == [False, True] + [False] * 4
    assert labels[1].calc is None and labels[0].get_forces().shape == (9, 3)
    union = read(tmp_path / "r" / "round_00" / "union.xyz", index=":")
    assert len(union) == len(read(ethanol_xtb, index=":")) + 5
    assert all(a.get_forces().shape == (9, 3) for a in union)
    assert [r["round"] for r in summary["rows"]] == [0, 1]


def test_a_round_labels_the_same_frames_on_two_dask_workers(rough_schnet, ethanol_xtb, tmp_path):
    pytest.importorskip("distributed")
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "one", **SETTINGS)
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "two", workers=2, **SETTINGS)
    labels = [(tmp_path / k / "round_00" / "labels.xyz").read_bytes() for k in ("one", "two")]
    assert labels[0] == labels[1] and labels[0].count(b"Properties=") == 6
    assert outcome(tmp_path / "one") == outcome(tmp_path / "two")


def test_other_settings_in_the_folder_are_an_error(rough_schnet, ethanol_xtb, tmp_path):
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **{**SETTINGS, "rounds": 0})
    with pytest.raises(BoltzmatchError, match="other settings"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **SETTINGS)
    with pytest.raises(BoltzmatchError, match="unknown calculator 'dft'"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "x", calculator="dft")
    with pytest.raises(BoltzmatchError, match="unknown selection 'random'; expected one of failures, uniform"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "x", selection="random")
    assert not (tmp_path / "x").exists()


def test_a_folder_written_before_selection_and_objective_existed_still_resumes(rough_schnet, ethanol_xtb, tmp_path):
    """Such runs used plain Fisher fine-tuning on frames before collapses: they resume with --huber-delta 0
    --selection failures, and the defaults (Huber 0.5 eV/Å, uniform frames) are a different run, named in the
    error."""
    plain = {**SETTINGS, "rounds": 0, "huber_delta": 0, "selection": "failures"}
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **plain)
    stored = json.loads((tmp_path / "r" / "settings.json").read_text())
    del stored["selection"], stored["objective"], stored["energy_weight"], stored["huber_delta"]
    (tmp_path / "r" / "settings.json").write_text(json.dumps(stored))
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **plain)
    with pytest.raises(BoltzmatchError, match="other settings: huber_delta None \\(asked 0.5\\), selection "
                                              "'failures' \\(asked 'uniform'\\); pass those"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", **{**SETTINGS, "rounds": 0})


def test_plain_active_learning_labels_uniform_frames_and_retrains_on_energies_and_forces(rough_schnet, ethanol_xtb,
                                                                                          tmp_path):
    """Baseline b of the issue: the same loop with frames drawn uniformly from the trajectories."""
    settings = {**SETTINGS, "selection": "uniform", "objective": "energy-forces"}
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "a", **settings)
    boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "b", **settings)
    assert outcome(tmp_path / "a") == outcome(tmp_path / "b")
    labels = read(tmp_path / "a" / "round_00" / "labels.xyz", index=":")
    assert len(labels) == 6
    assert len({(a.info["replica"], a.info["time_ps"]) for a in labels}) == 6  # distinct frames
    config = yaml.safe_load(open(tmp_path / "a" / "round_00" / "model" / "config.yaml"))
    assert config["training"]["objective"] == "energy-forces"
    assert (config["training"]["energy_weight"], config["training"]["force_weight"]) == (1.0, 100.0)
    failures = boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "f",
                                 **{**SETTINGS, "selection": "failures"})
    assert read(tmp_path / "f" / "round_00" / "candidates.xyz", index=":") != labels
    assert failures["rows"][0] == {**outcome(tmp_path / "a")[0][0], "model": str(rough_schnet)}


def test_the_fisher_options_reach_every_rounds_fine_tuning(rough_schnet, ethanol_xtb, tmp_path):
    """And --cuda-graphs reaches its MD and its fine-tuning (on the CPU each says it does not apply, once per run);
    a resume without it is the same run (graphs replay the same kernels)."""
    with pytest.warns(UserWarning, match="--cuda-graphs ignored") as caught:
        summary = boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", energy_weight=5.0,
                                    huber_delta=0.8, cuda_graphs=True, **SETTINGS)
    reasons = [str(w.message) for w in caught if "--cuda-graphs ignored" in str(w.message)]
    # once each over the run, not once per round (each round's MD and fine-tune check the device again)
    assert sorted(reasons) == sorted(f"--cuda-graphs ignored: the {what}'s device is cpu" for what in ("model", "run"))
    assert "fine-tuning: fisher, Huber δ 0.8 eV/Å" in format_refine_summary(summary)
    config = yaml.safe_load(open(tmp_path / "r" / "round_00" / "model" / "config.yaml"))["training"]
    assert (config["objective"], config["energy_weight"], config["huber_delta"]) == ("fisher", 5.0, 0.8)
    assert config["temperature"] == 500.0 and config["cuda_graphs"] is True
    again = boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "r", energy_weight=5.0,
                              huber_delta=0.8, **SETTINGS)
    assert again["rows"] == summary["rows"]


def test_huber_delta_defaults_to_half_an_ev_per_angstrom_with_fisher_only():
    assert resolve_huber_delta("fisher", None) == DEFAULT_HUBER_DELTA == 0.5
    assert resolve_huber_delta("fisher", 0) is None  # off: squared residuals
    assert resolve_huber_delta("fisher", 1.5) == 1.5
    assert resolve_huber_delta("energy-forces", None) is None
    for objective, delta in (("fisher", -0.5), ("energy-forces", 0.5)):
        with pytest.raises(BoltzmatchError, match="huber-delta must be positive"):
            resolve_huber_delta(objective, delta)


def test_bad_inputs_are_one_line_errors_and_leave_no_folder(rough_schnet, ethanol_xtb, tmp_path, capsys):
    for args, message in ((["missing-run", "--data", str(ethanol_xtb)], "missing-run: not a run directory"),
                          ([str(rough_schnet), "--data", "missing.xyz"], "missing.xyz: no such file"),
                          ([str(rough_schnet), "--data", str(ethanol_xtb), "--rounds", "-1"],
                           "rounds must be a non-negative integer"),
                          ([str(rough_schnet), "--data", str(ethanol_xtb), "--objective", "energy-forces",
                            "--huber-delta", "0.5"], "huber-delta must be positive (0: off) and only goes with "
                                                     "objective fisher, got 0.5 with energy-forces"),
                          ([str(rough_schnet), "--data", str(ethanol_xtb), "--energy-weight", "-1"],
                           "energy-weight must be non-negative"),
                          ([str(rough_schnet), "--data", str(ethanol_xtb), "--pressure", "0"],
                           "--pressure needs structures periodic in all three directions")):
        assert main(["refine", *args, "--out", str(tmp_path / "r"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_label_free_rounds_make_no_reference_call_and_use_the_model_s_frames(rough_schnet, ethanol_xtb, tmp_path,
                                                                            monkeypatch):
    generate_module = importlib.import_module("boltzmatch.data.reference_md")

    def refuse(*args, **kwargs):
        raise AssertionError("a label-free round called the reference method")

    monkeypatch.setattr(generate_module, "make_calculator", refuse)
    settings = {**SETTINGS, "rounds": 2}
    summary = boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "free", selection="none", **settings)
    assert summary["objective"] == "fisher-cd"
    assert [r["labels_used"] for r in summary["rows"]] == [0, 0, 0]
    assert not (tmp_path / "free" / "round_00" / "labels.xyz").exists()
    # the negatives of round 1 are every frame the MD of rounds 0 and 1 wrote, positions only
    md_frames = sum(len(read(p, index=":")) for k in (0, 1)
                    for p in (tmp_path / "free" / f"round_{k:02d}" / "md" / "trajectories").iterdir())
    negatives = read(tmp_path / "free" / "round_01" / "negatives.xyz", index=":")
    assert len(negatives) == md_frames and negatives[0].calc is None
    config = yaml.safe_load((tmp_path / "free" / "round_01" / "model" / "config.yaml").read_text())
    assert config["training"]["objective"] == "fisher-cd"
    assert config["training"]["cd_options"]["negatives"].endswith("round_01/negatives.xyz")
    assert "no reference call" in format_refine_summary(summary)


def test_label_free_settings_are_checked(rough_schnet, ethanol_xtb, tmp_path):
    with pytest.raises(BoltzmatchError, match="selection none takes no labels"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "x", selection="none", objective="fisher",
                          **SETTINGS)
    with pytest.raises(BoltzmatchError, match="cd-weight"):
        boltzmatch.refine(rough_schnet, data=ethanol_xtb, out=tmp_path / "y", selection="none", cd_weight=-1,
                          **SETTINGS)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_crystal_refined_at_a_pressure_labels_frames_at_the_volumes_its_md_found(tmp_path):
    """refine --pressure: each round's MD is NPT (simulate --pressure), so the frames it labels carry their own
    cells, with the reference's stress, and the settings record the pressure (resumed only with it). Training data
    without stress labels: the fine-tune still trains on the labels' stress (the union turned the term off)."""
    import yaml

    from boltzmatch.data import generate, read_structures, write_structures
    from boltzmatch.training.settings import DEFAULT_STRESS_WEIGHT

    data = tmp_path / "cu.xyz"
    generate("Cu-fcc-2x2x2", calculator="emt", temperature=600.0, time=0.2, timestep=2.0, interval=2,
             equilibration=50, out=tmp_path / "labelled.xyz", progress=False, pressure=0.0)
    frames = read_structures(tmp_path / "labelled.xyz")
    for frame in frames:
        frame.calc.results.pop("stress")
    write_structures(data, frames)
    model = tmp_path / "schnet"
    boltzmatch.train(data, out=model, model="schnet", config={"n_features": 16, "n_interactions": 1}, epochs=2,
                     progress=False)
    options = dict(data=data, calculator="emt", rounds=1, replicas=2, time=0.2, timestep=2.0, label_budget=4,
                   epochs=1, temperature=600.0, progress=False, pressure=0.0)
    summary = boltzmatch.refine(model, out=tmp_path / "r", **options)
    md = json.loads((tmp_path / "r" / "round_00" / "md" / "summary.json").read_text())
    assert md["pressure_GPa"] == 0.0 and md["mean_volume_A3"] > 0 and len(summary["rows"]) == 2
    labels = read(tmp_path / "r" / "round_00" / "labels.xyz", index=":")
    assert len(labels) == 4 and len({round(a.get_volume(), 6) for a in labels}) == 4
    assert all(a.get_stress().shape == (6,) for a in labels)
    fine_tuned = yaml.safe_load((tmp_path / "r" / "round_00" / "model" / "config.yaml").read_text())
    assert fine_tuned["training"]["stress_weight"] == DEFAULT_STRESS_WEIGHT
    assert json.loads((tmp_path / "r" / "settings.json").read_text())["pressure"] == 0.0
    with pytest.raises(BoltzmatchError, match="pressure"):
        boltzmatch.refine(model, out=tmp_path / "r", **{**options, "pressure": 1.0})
