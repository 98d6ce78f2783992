"""Issue 42: sweeps that W&B scripts and several sweeps can trust: W&B's argument form for a program of the
user's own, one line per failed trial and a non-zero exit when all fail, one database for several sweeps,
a resumed sweep that does not repeat its parameters, a report opened from anywhere, macros checked early."""

import json
import subprocess
import sys

import pytest
import yaml

optuna = pytest.importorskip("optuna", reason="the sweep extra")

from boltzmatch.errors import BoltzmatchError  # noqa: E402
from boltzmatch.sweep import run_sweep  # noqa: E402
from boltzmatch.sweep import runner as sweep_runner  # noqa: E402
from boltzmatch.sweep.command import trial_command  # noqa: E402
from boltzmatch.sweep.config import load_sweep  # noqa: E402
from boltzmatch.sweep.runner import load_study  # noqa: E402

PROGRAM = """import argparse, os
p = argparse.ArgumentParser()
p.add_argument('--learning_rate', type=float, required=True)
p.add_argument('--batch_size', type=int, required=True)
p.add_argument('--cutoff', type=float, required=True)
a = p.parse_args()
if a.learning_rate < 0:
    raise SystemExit('negative learning rate')
with open(os.path.join(os.environ['BOLTZMATCH_TRIAL_DIR'], 'metrics.csv'), 'w') as f:
    f.write('epoch,val_loss\\n1,%f\\n' % ((a.learning_rate - 0.01) ** 2 + a.cutoff / a.batch_size))
"""


def program_sweep(tmp_path, parameters: dict, **keys) -> str:
    program = tmp_path / "train.py"
    program.write_text(PROGRAM)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(program),
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": parameters, **keys}))
    return str(config)


def test_a_wandb_program_gets_wandbs_argument_form(tmp_path):
    config = program_sweep(tmp_path, {"learning_rate": {"values": [0.01, 0.02]}, "batch_size": {"value": 16},
                                      "cutoff": {"value": 5.0}})
    summary = run_sweep(config, out=tmp_path / "s")
    assert summary["complete"] == 2 and summary["best_values"]["learning_rate"] == 0.01
    study, _ = load_study(tmp_path / "s")
    command = study.trials[0].user_attrs["command"]
    assert {"--batch_size=16", "--cutoff=5.0"} <= set(command)  # names as written, nothing moved into files
    assert any(arg.startswith("--learning_rate=0.0") for arg in command)
    assert not list((tmp_path / "s" / "trials").glob("*/model.yaml"))


def test_a_sweep_whose_trials_all_fail_exits_non_zero_with_a_line_per_failure(tmp_path):
    config = program_sweep(tmp_path, {"learning_rate": {"values": [-1.0, -2.0]}, "batch_size": {"value": 16},
                                      "cutoff": {"value": 5.0}})
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "sweep", "run", config, "--out",
                             str(tmp_path / "s")], capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.count("failed: exit code 1: negative learning rate") == 2
    assert "every trial failed (2)" in result.stderr.strip().splitlines()[-1]


def test_two_sweeps_share_one_database_and_each_reports_its_own(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = program_sweep(tmp_path, {"learning_rate": {"values": [0.01, 0.02, 0.03]}, "batch_size": {"value": 8},
                                     "cutoff": {"value": 4.0}})
    run_sweep(first, out=tmp_path / "a", storage=storage)
    (tmp_path / "b").mkdir()
    second = tmp_path / "b" / "sweep.yaml"
    second.write_text(yaml.safe_dump({**yaml.safe_load(open(first)), "parameters": {
        "learning_rate": {"values": [0.05]}, "batch_size": {"value": 8}, "cutoff": {"value": 4.0}}}))
    summary = run_sweep(second, out=tmp_path / "b" / "s", storage=storage)
    assert summary["complete"] == 1 and summary["trials"] == 1  # it ran, and counted only its own trial
    studies = optuna.get_all_study_names(storage=storage)
    assert len(studies) == 2
    # the report finds its study from the folder alone (the storage URL is recorded there), from any directory
    study, _ = load_study(tmp_path / "a")
    assert len(study.trials) == 3 and all(t.user_attrs["run_dir"].startswith("/") for t in study.trials)


def test_a_resumed_random_sweep_does_not_repeat_its_parameters(tmp_path, monkeypatch):
    config = program_sweep(tmp_path, {"learning_rate": {"distribution": "uniform", "min": 0.0, "max": 0.1},
                                      "batch_size": {"value": 8}, "cutoff": {"value": 4.0}},
                           method="random", run_cap=4)
    real, calls = sweep_runner.run_trial, []

    def interrupted(trial, sweep, out, gpu=None):  # Ctrl-C during the third trial
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(trial, sweep, out, gpu)

    monkeypatch.setattr(sweep_runner, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, out=tmp_path / "s")
    monkeypatch.setattr(sweep_runner, "run_trial", real)
    run_sweep(config, out=tmp_path / "s")  # resumed: the same command, the same seed
    study, _ = load_study(tmp_path / "s")
    rates = [t.params["learning_rate"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(rates) == 4 and len(set(rates)) == 4  # the sampler went on; it used to redraw trial 0's value


def test_macros_are_checked_when_the_config_is_read_and_the_report_needs_a_study(tmp_path):
    path = tmp_path / "sweep.yaml"
    spec = {"method": "grid", "program": "train.py", "parameters": {"x": {"values": [1, 2]}},
            "command": ["${env}", "${interpreter}", "${program}", "${argz}"]}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(BoltzmatchError, match=r"unknown macro \$\{argz\}"):
        load_sweep(path)
    spec["command"] = ["${env}", "${interpreter}", "${program}", "${args_json_file}", "${args_no_boolean_flags}"]
    path.write_text(yaml.safe_dump(spec))
    command = trial_command(load_sweep(path), {"x": 1, "flag": True, "off": False}, tmp_path / "t")
    assert command[3] == str(tmp_path / "t" / "args.json") and command[4:] == ["--x=1", "--flag"]
    assert json.loads((tmp_path / "t" / "args.json").read_text()) == {"x": 1, "flag": True, "off": False}
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(path.read_text())
    with pytest.raises(BoltzmatchError, match="no study.db"):
        load_study(folder)
    assert not (folder / "study.db").exists()


SLOW_PROGRAM = """import argparse, os, time
p = argparse.ArgumentParser(); p.add_argument('--x', type=int); p.add_argument('--y', type=int); a = p.parse_args()
folder = os.environ['BOLTZMATCH_TRIAL_DIR']
marker = os.path.join(folder, '..', '..', 'first-trial-started')
first = not os.path.exists(marker)
open(marker, 'a').close()
open(os.path.join(folder, 'pid'), 'w').write(str(os.getpid()))
time.sleep(60 if first else 1.5)  # the first trial outlives any wait below unless it is killed
with open(os.path.join(folder, 'metrics.csv'), 'w') as f:
    f.write('epoch,val_loss\\n1,%d\\n' % (10 * a.x + a.y))
"""


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended
        return stat.read().split()[2] != "Z"


def _fresh_postgres_database() -> str:
    """A new database on the PostgreSQL server .ci/run starts (BOLTZMATCH_TEST_POSTGRES); its URL."""
    import os
    import time

    import sqlalchemy as sa

    server = os.environ["BOLTZMATCH_TEST_POSTGRES"]
    database = f"grid_{os.getpid()}_{int(time.time() * 1000)}"
    with sa.create_engine(server, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {database}"))
    return server.rsplit("/", 1)[0] + "/" + database


def _postgres_or_skip():
    import os

    if not os.environ.get("BOLTZMATCH_TEST_POSTGRES"):
        pytest.skip("set BOLTZMATCH_TEST_POSTGRES to a server URL (.ci/run starts one)")


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_two_agents_on_one_grid_complete_every_point_once_when_one_is_stopped_mid_trial(tmp_path, stop, storage):
    """Each agent used to shuffle the grid with its own seed (points skipped and repeated), and a point
    interrupted by SIGTERM counted as done. The grid is now a queue; the stopped agent's trial process
    ends with it (SIGKILL: through PR_SET_PDEATHSIG) and its point is run by the other agent."""
    import os
    import signal
    import time

    program = tmp_path / "slow.py"
    program.write_text(SLOW_PROGRAM)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(program),
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": [0, 1, 2]}, "y": {"values": [0, 1]}}}))
    folder = tmp_path / "s"
    url: list[str] = []
    if storage == "postgresql":
        _postgres_or_skip()
        url = ["--storage", _fresh_postgres_database()]
    command = [sys.executable, "-m", "boltzmatch", "sweep"]
    first = subprocess.Popen(command + ["run", str(config), "--out", str(folder), *url, "--heartbeat", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # a killed trial: stale in 8 s
    pid_file = folder / "trials" / "0000" / "pid"
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    trial_pid = int(pid_file.read_text())
    second = subprocess.Popen(command + ["agent", str(folder), *url], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    os.kill(first.pid, getattr(signal, stop))  # the agent only, not its process group
    first.wait(timeout=30)
    deadline = time.time() + 10
    while _alive(trial_pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(trial_pid), "the stopped agent's trial process outlived it"
    assert second.wait(timeout=240) == 0, second.stderr.read()
    study, _ = load_study(folder)  # study.json records the storage
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    points = sorted((t.params["x"], t.params["y"]) for t in complete)
    assert points == [(x, y) for x in range(3) for y in range(2)]  # every point, each exactly once
    assert sorted(t.value for t in complete) == [0, 1, 10, 11, 20, 21]


def test_a_wrong_metric_name_stops_the_sweep_at_the_first_epoch(tmp_path):
    """It was caught only after the first trial had trained to the end."""
    import time

    program = tmp_path / "train.py"
    program.write_text("import os, time\n"
                       "folder = os.environ['BOLTZMATCH_TRIAL_DIR']\n"
                       "open(os.path.join(folder, 'metrics.csv'), 'w').write('epoch,val_loss\\n1,0.5\\n')\n"
                       "time.sleep(120)\n")
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(program),
                                      "metric": {"name": "val_los", "goal": "minimize"},
                                      "parameters": {"x": {"values": [1, 2]}}}))
    start = time.time()
    with pytest.raises(BoltzmatchError, match=r"metric.name: 'val_los' is not a column .*columns: epoch, val_loss"):
        run_sweep(config, out=tmp_path / "s")
    assert time.time() - start < 60


def test_report_plots_log_and_categorical_parameters_and_flags_importance_from_few_trials(tmp_path):
    program = tmp_path / "train.py"
    program.write_text("import argparse, math, os\n"
                       "p = argparse.ArgumentParser(); p.add_argument('--lr', type=float); p.add_argument('--act')\n"
                       "p.add_argument('--width', type=int); a = p.parse_args()\n"
                       "value = (math.log10(a.lr) + 3) ** 2 + (a.act == 'relu') + a.width / 100\n"
                       "open(os.path.join(os.environ['BOLTZMATCH_TRIAL_DIR'], 'metrics.csv'), 'w')"
                       ".write('epoch,val_loss\\n1,%f\\n' % value)\n")  # one epoch per trial
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "method": "random", "program": str(program), "run_cap": 8, "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
                       "act": {"values": ["relu", "silu"]}, "width": {"values": [8, 16, 32]}}}))
    run_sweep(config, out=tmp_path / "s")
    from boltzmatch.sweep import write_report

    result = write_report(tmp_path / "s")
    for png in ("importance.png", "parallel_coordinates.png", "metric_vs_parameters.png", "curves_by_parameter.png"):
        assert (tmp_path / "s" / png).stat().st_size > 0, png
    assert "8 completed trials" in result["importance_warning"]
    report = (tmp_path / "s" / "report.md").read_text()
    assert "importance.png" in report and "read it as a hint" in report


def test_a_wandb_config_without_run_cap_runs_until_each_agents_count(tmp_path):
    """W&B's own example config (program, bayes, no run_cap) was refused; W&B runs it until the agents stop."""
    from boltzmatch.sweep import agent

    config = program_sweep(tmp_path, {"learning_rate": {"min": 0.001, "max": 0.1}, "batch_size": {"values": [16, 32]},
                                      "cutoff": {"value": 4.0}}, method="bayes")
    first = run_sweep(config, out=tmp_path / "s", count=3)
    assert first["complete"] == 3
    second = agent(tmp_path / "s", count=2, seed=1)
    assert second["complete"] == 5 and second["fail"] == 0
    with pytest.raises(BoltzmatchError, match="--count must be at least 1"):
        agent(tmp_path / "s", count=0)


def test_a_finished_sweep_continues_with_a_raised_run_cap_and_refuses_other_changes(tmp_path):
    parameters = {"learning_rate": {"min": 0.001, "max": 0.1}, "batch_size": {"values": [16, 32]},
                  "cutoff": {"value": 4.0}}
    first = program_sweep(tmp_path, parameters, method="random", run_cap=2)
    assert run_sweep(first, out=tmp_path / "s")["complete"] == 2
    raised = program_sweep(tmp_path, parameters, method="random", run_cap=4)
    assert run_sweep(raised, out=tmp_path / "s")["complete"] == 4
    assert "run_cap: 4" in (tmp_path / "s" / "sweep.yaml").read_text()  # agents read the raised cap
    changed = program_sweep(tmp_path, {**parameters, "cutoff": {"value": 5.0}}, method="random", run_cap=4)
    with pytest.raises(BoltzmatchError, match="only run_cap may change"):
        run_sweep(changed, out=tmp_path / "s")


def test_an_unset_envvar_of_the_command_stops_the_sweep_before_any_trial(tmp_path, monkeypatch):
    monkeypatch.delenv("BOLTZMATCH_TEST_UNSET", raising=False)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": "train.py", "parameters": {"x": {"value": 1}},
                                      "command": ["${interpreter}", "${program}", "${envvar:BOLTZMATCH_TEST_UNSET}"]}))
    with pytest.raises(BoltzmatchError, match="BOLTZMATCH_TEST_UNSET is not set"):
        run_sweep(config, out=tmp_path / "s")
    assert not (tmp_path / "s" / "trials").exists()
