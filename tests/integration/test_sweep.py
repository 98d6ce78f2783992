"""Sweeps from W&B sweep YAML run by Optuna: distributions, a 12-trial sweep, failures, bad keys."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

optuna = pytest.importorskip("optuna", reason="the sweep extra")

from boltzmatch.errors import BoltzmatchError  # noqa: E402
from boltzmatch.sweep import best_config, parse_sweep, run_sweep, write_report  # noqa: E402
from boltzmatch.sweep.runner import load_study  # noqa: E402


def draws(spec: dict, n: int = 400, method: str = "random") -> tuple[list, dict]:
    sweep = parse_sweep({"method": method, "run_cap": n, "parameters": {"x": spec}})
    (parameter,) = sweep.parameters
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values, distributions = [], {}
    for _ in range(n):
        trial = study.ask()
        values.append(parameter.suggest(trial))
        distributions = trial.distributions
        study.tell(trial, 0.0)
    return values, distributions


def test_every_wandb_distribution_maps_to_optuna():
    fd = optuna.distributions
    v, d = draws({"distribution": "int_uniform", "min": 2, "max": 5})
    assert d["x"] == fd.IntDistribution(2, 5) and set(v) == {2, 3, 4, 5}
    v, d = draws({"min": 0.5, "max": 1.5})  # floats → uniform
    assert d["x"] == fd.FloatDistribution(0.5, 1.5) and 0.5 <= min(v) and max(v) <= 1.5
    v, d = draws({"distribution": "q_uniform", "min": 0, "max": 10, "q": 2.5})
    assert set(v) <= {0, 2.5, 5.0, 7.5, 10.0} and len(set(v)) == 5
    v, d = draws({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1})
    assert d["x"] == fd.FloatDistribution(1e-4, 1e-1, log=True)
    assert abs(np.median(np.log10(v)) + 2.5) < 0.2  # log-uniform: median at the middle decade
    v, d = draws({"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 1})
    assert all(float(x).is_integer() for x in v) and min(v) >= 1 and max(v) <= 1000
    v, d = draws({"distribution": "inv_log_uniform_values", "min": 0.1, "max": 10})
    assert d["x.inverse"] == fd.FloatDistribution(0.1, 10, log=True) and 0.1 <= min(v) and max(v) <= 10
    v, d = draws({"distribution": "log_uniform", "min": 0, "max": 2})  # W&B's base-e form
    assert d["x"].log and d["x"].low == pytest.approx(1.0) and d["x"].high == pytest.approx(np.e**2)
    v, d = draws({"distribution": "q_log_uniform", "min": 0, "max": 5, "q": 1})  # base e, then rounded
    assert d["x"].log and all(float(x).is_integer() for x in v) and 1 <= min(v) and max(v) <= round(np.e**5)
    v, d = draws({"distribution": "inv_log_uniform", "min": 0, "max": 3})  # log(1/X) uniform in [0, 3]
    assert np.exp(-3) <= min(v) and max(v) <= 1.0
    assert np.median(-np.log(v)) == pytest.approx(1.5, abs=0.2)
    v, _ = draws({"distribution": "normal", "mu": 3.0, "sigma": 0.5}, n=2000)
    assert np.mean(v) == pytest.approx(3.0, abs=0.05) and np.std(v) == pytest.approx(0.5, abs=0.05)
    v, _ = draws({"distribution": "q_normal", "mu": 0, "sigma": 2, "q": 1})
    assert all(float(x).is_integer() for x in v)
    v, _ = draws({"distribution": "log_normal", "mu": 0, "sigma": 1}, n=2000)
    assert np.median(v) == pytest.approx(1.0, abs=0.1) and min(v) > 0
    v, _ = draws({"distribution": "q_log_normal", "mu": 2, "sigma": 0.5, "q": 1})
    assert all(float(x).is_integer() for x in v)
    v, _ = draws({"distribution": "beta", "a": 2, "b": 5}, n=2000)
    assert np.mean(v) == pytest.approx(2 / 7, abs=0.02) and 0 < min(v) and max(v) < 1
    v, _ = draws({"distribution": "q_beta", "a": 2, "b": 2, "q": 0.25})
    assert set(v) <= {0, 0.25, 0.5, 0.75, 1.0}
    v, d = draws({"values": ["a", "b", "c"]})
    assert d["x"] == fd.CategoricalDistribution(["a", "b", "c"]) and set(v) == {"a", "b", "c"}
    v, _ = draws({"values": [1, 2], "probabilities": [0.8, 0.2]}, n=2000)
    assert np.mean(np.asarray(v) == 1) == pytest.approx(0.8, abs=0.03)
    v, d = draws({"value": 7})
    assert set(v) == {7} and d == {}


def test_grid_enumeration_and_refusals():
    sweep = parse_sweep({"method": "grid", "parameters": {
        "a": {"values": [1, 2, 3]}, "b": {"distribution": "int_uniform", "min": 0, "max": 1}, "c": {"value": "x"},
        "model": {"parameters": {"cutoff": {"values": [4.0, 5.0]}}}}})
    assert sweep.grid_space() == {"a": [1, 2, 3], "b": [0, 1], "c": ["x"], "model.cutoff": [4.0, 5.0]}
    assert sweep.n_grid() == 12
    with pytest.raises(BoltzmatchError, match=r"parameters\.lr: a grid needs"):
        parse_sweep({"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 0.2}}})
    with pytest.raises(BoltzmatchError, match="unknown key 'distrib'"):
        parse_sweep({"method": "random", "run_cap": 2, "parameters": {"lr": {"distrib": "uniform"}}})
    # without run_cap a random/bayes sweep runs until its agents stop (--count N or Ctrl-C), as on W&B
    assert parse_sweep({"method": "bayes", "metric": {"name": "val_loss"},
                        "parameters": {"lr": {"min": 0.1, "max": 0.2}}}).run_cap is None
    with pytest.raises(BoltzmatchError, match="unknown key 'methd'"):
        parse_sweep({"methd": "grid", "parameters": {"lr": {"value": 1}}})
    with pytest.raises(BoltzmatchError, match="'metric' .* is needed for bayes"):  # no silent val_loss
        parse_sweep({"method": "bayes", "run_cap": 3, "parameters": {"lr": {"min": 0.1, "max": 0.2}}})
    hyperband = {"type": "hyperband", "min_iter": 1, "strict": True}
    with pytest.raises(BoltzmatchError, match="early_terminate.strict'.*not supported"):  # never ignored
        parse_sweep({"method": "grid", "early_terminate": hyperband, "parameters": {"lr": {"value": 1}}})
    assert parse_sweep({"method": "grid", "early_terminate": {**hyperband, "strict": False},
                        "parameters": {"lr": {"value": 1}}}).early_terminate["strict"] is False


@pytest.fixture
def sweep_yaml(tmp_path, ethanol_xtb):
    def write(parameters: dict, **top) -> str:
        config = {"method": "random", "metric": {"name": "val_loss", "goal": "minimize"}, "run_cap": 12,
                  "parameters": {"data": {"value": str(ethanol_xtb)}, "n_interactions": {"value": 1},
                                 "n_features": {"value": 8}, "n_rbf": {"value": 6}, "cutoff": {"value": 4.0},
                                 **parameters}, **top}
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(config))
        return str(path)

    return write


def test_a_12_trial_sweep_runs_from_yaml_and_reports(tmp_path, sweep_yaml):
    config = sweep_yaml({"epochs": {"values": [1, 2]}, "batch_size": {"values": [8, 16]},
                         "lr": {"distribution": "log_uniform_values", "min": 5e-4, "max": 1e-2}})
    summary = run_sweep(config, out=tmp_path / "s", jobs=2)
    assert summary["complete"] == 12 and summary["fail"] == 0
    assert len(list((tmp_path / "s" / "trials").glob("*/metrics.csv"))) == 12
    report = write_report(tmp_path / "s")
    assert set(report["correlations"]) == {"epochs", "batch_size", "lr"}
    assert -1 <= report["correlations"]["lr"]["pearson"] <= 1 and report["slopes"]["lr"]["per"] == "log10 unit"
    for png in ("correlation.png", "parallel_coordinates.png", "metric_vs_parameters.png", "curves_by_parameter.png"):
        assert (tmp_path / "s" / png).stat().st_size > 5000
    best = best_config(tmp_path / "s")
    assert best["value"] == summary["best_value"] and "--lr" in best["command"]
    # the sweep is finished: running it again adds no trial
    assert run_sweep(config, out=tmp_path / "s")["trials"] == 12


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path, sweep_yaml):
    config = sweep_yaml({"epochs": {"value": 1}, "lr": {"values": [-1.0, 1e-3]}}, run_cap=3)
    summary = run_sweep(config, out=tmp_path / "s")
    assert summary["complete"] == 3 and summary["fail"] >= 1
    study, _ = load_study(tmp_path / "s")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.user_attrs["values"]["lr"] == -1.0 for t in failed)


def test_bad_yaml_key_is_one_line_and_exit_code_2(tmp_path, sweep_yaml):
    config = sweep_yaml({"lr": {"distribution": "uniformish", "min": 0.1, "max": 0.2}})
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "sweep", "run", config, "--out",
                             str(tmp_path / "s")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "parameters.lr.distribution" in result.stderr and not (tmp_path / "s" / "study.db").exists()


POSTGRES = os.environ.get("BOLTZMATCH_TEST_POSTGRES")


HELD_PROGRAM = """\
import argparse, os, pathlib, time
p = argparse.ArgumentParser(); p.add_argument('--x', type=float); a = p.parse_args()
folder = pathlib.Path(os.environ['BOLTZMATCH_TRIAL_DIR'])
deadline = time.time() + 300
while folder.name != '0000' and pathlib.Path({hold!r}).exists() and time.time() < deadline:
    time.sleep(0.05)  # held by the test, so that which agent runs what does not depend on the machine's speed
(folder / 'metrics.csv').write_text('epoch,val_loss\\n1,%f\\n' % (a.x - 2) ** 2)
"""


@pytest.mark.skipif(not POSTGRES, reason="set BOLTZMATCH_TEST_POSTGRES to a server URL (.ci/run starts one)")
def test_two_agents_share_postgres_and_the_study_survives_a_killed_agent(tmp_path):
    """Trial 0 completes; every later trial waits while the file ``hold`` exists. So the first agent is
    held in trial 1 when the second agent starts and is held in its own: both run at once on any machine
    (a version that raced real training runs failed on a slow CI machine). The first agent is killed, and
    after the heartbeat grace period the second is released: its next trial finds trial 1 stale."""
    import sqlalchemy as sa

    from boltzmatch.sweep.runner import GRACE_BEATS

    database = f"sweep_{os.getpid()}_{int(time.time())}"
    with sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {database}"))
    url = POSTGRES.rsplit("/", 1)[0] + "/" + database
    hold = tmp_path / "hold"
    hold.touch()
    program = tmp_path / "train.py"
    program.write_text(HELD_PROGRAM.format(hold=str(hold)))
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "random", "program": str(program), "run_cap": 5,
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": [0, 1, 2, 3]}}}))
    folder = tmp_path / "s"
    command = [sys.executable, "-m", "boltzmatch", "sweep"]
    first = subprocess.Popen(command + ["run", str(config), "--out", str(folder), "--storage", url,
                                        "--heartbeat", "2"],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "w"),  # noqa: SIM115
                             start_new_session=True)

    def trials():
        try:  # the study's name is the sweep's own (study.json), so sweeps can share a database
            name = json.loads((folder / "study.json").read_text())["study_name"]
            return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
        except (KeyError, FileNotFoundError, ValueError):  # not created yet
            return []
        except sa.exc.SQLAlchemyError:  # the agent is creating the schema right now
            return []

    def states(state):
        return {t.number for t in trials() if t.state == state}

    def wait_for(condition, what, process=None):
        deadline = time.time() + 180
        while not condition() and time.time() < deadline:
            assert process is None or process.poll() is None, f"{what}: the agent exited: {process.stderr.read()}"
            time.sleep(0.1)
        assert condition(), f"{what}: {[(t.number, t.state.name) for t in trials()]}"

    Trial = optuna.trial.TrialState
    wait_for(lambda: states(Trial.COMPLETE) == {0} and states(Trial.RUNNING) == {1}, "the first agent held in trial 1")
    second = subprocess.Popen(command + ["agent", str(folder), "--storage", url], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: states(Trial.RUNNING) == {1, 2}, "both agents held in a trial", second)
    os.killpg(first.pid, signal.SIGKILL)  # the agent and its trial's process
    first.wait()
    time.sleep(GRACE_BEATS * 2 + 2)  # trial 1's heartbeat goes stale while the second agent is still held
    hold.unlink()
    assert second.wait(timeout=180) == 0, second.stderr.read()
    final = trials()
    complete = {t.number for t in final if t.state == Trial.COMPLETE}
    assert len(complete) >= 5 and 0 in complete  # nothing completed was lost
    assert [t.number for t in final if t.state == Trial.FAIL] == [1]  # the killed agent's stale trial
    (retried,) = [t for t in final if t.system_attrs.get("failed_trial") == 1]  # its parameters ran again
    assert retried.state == Trial.COMPLETE and retried.params == final[1].params
    for t in final:
        if t.number in complete:
            assert (Path(t.user_attrs["run_dir"]) / "metrics.csv").exists()


def test_the_heartbeat_is_the_sweeps_own_and_bad_values_are_one_line(tmp_path, capsys):
    """--heartbeat is fixed when the sweep starts (study.json): agents read it there, another value is refused;
    folders from before it read as 5 s."""
    from boltzmatch.cli.main import main
    from boltzmatch.sweep.runner import HEARTBEAT_S, study_record

    (tmp_path / "new").mkdir()
    record = study_record(tmp_path / "new", create=True, heartbeat=2)
    assert record["heartbeat_s"] == 2 and study_record(tmp_path / "new")["heartbeat_s"] == 2
    with pytest.raises(BoltzmatchError, match=r"--heartbeat 3: the sweep's agents share the heartbeat it started "
                                              r"with \(2 s, study.json\)"):
        study_record(tmp_path / "new", heartbeat=3)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "study.json").write_text(json.dumps({"storage": None, "study_name": "boltzmatch-sweep"}))
    assert study_record(tmp_path / "old")["heartbeat_s"] == HEARTBEAT_S
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": "train.py", "parameters": {"x": {"value": 1}}}))
    assert main(["sweep", "run", str(config), "--out", str(tmp_path / "s"), "--heartbeat", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--heartbeat must be a whole number of seconds, at least 1" in err


def test_command_macros_and_model_keys(tmp_path):
    from boltzmatch.sweep.command import trial_command
    from boltzmatch.sweep.config import load_sweep

    path = tmp_path / "sweep.yaml"
    path.write_text("method: grid\nprogram: train.py\ncommand:\n  - ${env}\n  - ${interpreter}\n  - ${program}\n"
                    "  - ${args_no_hyphens}\n  - ${args_json}\n  - boltzmatch\n  - train\n  - data.xyz\n  - ${args}\n"
                    "parameters:\n  batch_size: {value: 8}\n  antithetic: {value: false}\n"
                    "  model:\n    parameters:\n      cutoff: {value: 4.5}\n")
    sweep = load_sweep(path)
    command = trial_command(sweep, {"batch_size": 8, "antithetic": False, "model.cutoff": 4.5}, tmp_path / "t")
    assert command[:3] == ["/usr/bin/env", sys.executable, "train.py"]
    assert "batch_size=8" in command and '{"batch_size": 8, "antithetic": false, "cutoff": 4.5}' in command
    tail = command[command.index("data.xyz") + 1:]
    assert tail[:2] == ["--config", str(tmp_path / "t" / "model.yaml")] and "--no-antithetic" in tail
    assert tail[tail.index("--batch-size") + 1] == "8" and tail[-3:] == ["--out", str(tmp_path / "t"), "--quiet"]
    assert yaml.safe_load((tmp_path / "t" / "model.yaml").read_text()) == {"name": "schnet", "cutoff": 4.5}


def test_envvar_macro_expands_and_an_unset_variable_is_one_line(tmp_path, monkeypatch):
    from boltzmatch.sweep.command import trial_command

    sweep = parse_sweep({"method": "grid", "program": "train.py", "parameters": {"x": {"value": 1}},
                         "command": ["${interpreter}", "${program}", "--home", "${envvar:BOLTZMATCH_TEST_HOME}",
                                     "${args}"]})
    monkeypatch.setenv("BOLTZMATCH_TEST_HOME", "/somewhere")
    assert trial_command(sweep, {"x": 1}, tmp_path)[2:] == ["--home", "/somewhere", "--x=1"]
    monkeypatch.delenv("BOLTZMATCH_TEST_HOME")
    with pytest.raises(BoltzmatchError, match="BOLTZMATCH_TEST_HOME is not set"):
        trial_command(sweep, {"x": 1}, tmp_path)
    with pytest.raises(BoltzmatchError, match=r"unknown macro \$\{envvar:\}"):
        parse_sweep({"method": "grid", "command": ["${envvar:}"], "parameters": {"x": {"value": 1}}})


def test_a_program_of_the_users_own_runs_with_wandbs_default_command(tmp_path):
    program = tmp_path / "train.py"
    program.write_text(
        "import argparse, os\n"
        "p = argparse.ArgumentParser(); p.add_argument('--x', type=float); a = p.parse_args()\n"
        "with open(os.path.join(os.environ['BOLTZMATCH_TRIAL_DIR'], 'metrics.csv'), 'w') as f:\n"
        "    f.write('epoch,val_loss\\n1,%f\\n2,%f\\n' % ((a.x - 2) ** 2 + 1, (a.x - 2) ** 2))\n")
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(program),
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": [0, 1, 2, 3]}}}))
    summary = run_sweep(config, out=tmp_path / "s")
    assert summary["complete"] == 4 and summary["best_values"] == {"x": 2} and summary["best_value"] == 0


def test_hyperband_gets_the_metric_every_epoch(tmp_path, sweep_yaml):
    config = sweep_yaml({"epochs": {"value": 3}, "lr": {"values": [1e-3, 3e-3]}}, run_cap=2,
                        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})
    run_sweep(config, out=tmp_path / "s")
    study, _ = load_study(tmp_path / "s")
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [1, 2, 3]
        else:
            assert trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values


def test_a_sweep_without_data_or_command_is_refused_before_any_trial(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("method: random\nrun_cap: 2\nparameters:\n  lr: {values: [0.001]}\n")
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "sweep", "run", str(config), "--out",
                             str(tmp_path / "s")], capture_output=True, text=True)
    assert result.returncode == 2 and "parameters.data" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "s").exists()
