"""Run a sweep: an Optuna study whose trials are `boltzmatch train` runs (or the config's ``command``).

The sweep folder holds ``sweep.yaml`` (the config as given), ``study.db`` (SQLite, unless
``storage`` names another database such as ``postgresql://…``) and ``trials/NNNN/`` (each trial's
run directory and ``log.txt``). Each trial is a subprocess; the runner reads its ``metrics.csv``
while it trains and reports the metric per epoch to Optuna, so Hyperband can stop it early. A
trial whose process fails is recorded as failed and the study goes on. Trials of an agent that
dies stop sending heartbeats; after the grace period another agent marks them failed and
re-enqueues their parameters (``RetryHeartbeatStaleTrialCallback``); a grid is a queue of its points
and an agent stopped by SIGTERM re-enqueues the trial in hand (:mod:`.trial_control`). The study ends when
``run_cap`` trials (the grid's size for grid) have completed or been pruned, or the metric reaches
``metric.target``. Without ``command``, a config with ``program`` runs W&B's default
``${env} ${interpreter} ${program} ${args}``, else ``boltzmatch train DATA ${args}``; a program of
the user's own reports by writing ``metrics.csv`` (a column per metric, one row per epoch) into
the folder named by the environment variable ``BOLTZMATCH_TRIAL_DIR``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..errors import BoltzmatchError
from .command import trial_command
from .config import SweepConfig, hyperband, is_envvar_macro, load_sweep
from .gpus import GpuSlots, check_jobs, parse_gpus, trial_environment
from .trial_control import counts_as_failure, die_with_parent, grid_queue_sampler, is_surplus, queue_grid, requeue

SWEEP_FILE = "sweep.yaml"
STUDY_FILE = "study.json"  # where the sweep's study lives: its storage URL (null: the folder's study.db) and name
STUDY_NAME = "boltzmatch-sweep"  # the study of sweep folders written before study.json existed
#: s between a running trial's heartbeats (Optuna's heartbeat_interval), the default of ``--heartbeat``; a trial
#: silent for GRACE_BEATS of them is failed and its parameters run again (Optuna's grace_period)
HEARTBEAT_S, GRACE_BEATS = 5, 4
FAILURES_WITHOUT_CAP = 10  # a sweep without run_cap stops after this many failures and no success


def _storage(out: Path, record: dict):
    """The study's storage as ``record`` (:func:`study_record`) gives it: its URL and the sweep's heartbeat."""
    url = record["storage"] or f"sqlite:///{(out / 'study.db').resolve()}"
    heartbeat = record["heartbeat_s"]
    try:
        from .storage import open_storage

        return open_storage(url, heartbeat, GRACE_BEATS * heartbeat)
    except Exception as exc:  # a wrong URL, an unreachable server, a missing driver
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise BoltzmatchError(f"storage {url}: cannot open ({type(exc).__name__}: {reason})") from None


def study_record(out: Path, storage: str | None = None, create: bool = False, heartbeat: int | None = None) -> dict:
    """The sweep folder's ``study.json``: ``storage`` (None: the folder's SQLite file), ``study_name``, one
    per sweep so that sweeps share a database, and ``heartbeat_s``, which every agent of the sweep keeps.
    ``create`` writes it for a new sweep (a unique name; ``heartbeat`` s, default :data:`HEARTBEAT_S`); a folder
    from before it existed reads as the old fixed name. A ``storage`` given explicitly wins over the record;
    a ``heartbeat`` other than the record's is a one-line error."""
    path = out / STUDY_FILE
    if path.exists():
        record = json.loads(path.read_text())
    elif create:
        import uuid

        from ..utils.atomic import atomic_write_text

        record = {"storage": storage, "study_name": f"boltzmatch-{out.resolve().name}-{uuid.uuid4().hex[:8]}",
                  "heartbeat_s": heartbeat or HEARTBEAT_S}
        atomic_write_text(path, json.dumps(record, indent=2))
    else:
        record = {"storage": None, "study_name": STUDY_NAME}
    record.setdefault("heartbeat_s", HEARTBEAT_S)  # folders from before --heartbeat
    if heartbeat is not None and heartbeat != record["heartbeat_s"]:
        raise BoltzmatchError(f"{out}: --heartbeat {heartbeat}: the sweep's agents share the heartbeat it started "
                              f"with ({record['heartbeat_s']} s, {STUDY_FILE})")
    return {**record, "storage": storage or record["storage"]}


def _sampler(sweep: SweepConfig, seed: int):
    import optuna

    if sweep.method == "grid":  # the grid's points come from a queue: trial_control
        return grid_queue_sampler(seed)
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _value(row: dict, metric: str) -> float | None:
    text = row.get(metric)
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def run_trial(trial, sweep: SweepConfig, out: Path, gpu: str | None = None) -> float:
    """Optuna objective: run one trial's process (on GPU ``gpu`` alone where given), report its metric per
    epoch, return its best value."""
    import optuna

    if is_surplus(trial, sweep):  # the grid's queue ran dry before this trial popped a point
        trial.set_user_attr("surplus", True)
        return float("nan")
    values = {p.name: p.suggest(trial) for p in sweep.parameters}
    trial_dir = out / "trials" / f"{trial.number:04d}"
    if trial_dir.exists():  # a retried trial starts afresh
        shutil.rmtree(trial_dir)
    trial_dir.mkdir(parents=True)
    command = trial_command(sweep, values, trial_dir)
    trial.set_user_attr("values", json.loads(json.dumps(values, default=str)))
    trial.set_user_attr("run_dir", str(trial_dir.resolve()))  # the report reads it from any directory
    trial.set_user_attr("command", command)
    if gpu is not None:
        trial.set_user_attr("gpu", gpu)
    metric = sweep.metric["name"]
    maximize = sweep.direction == "maximize"
    # per-epoch values go to the study only when a pruner reads them (each report is a database
    # commit: 40 of them cost ≈ 0.4 s a trial in SQLite); the report's curves come from metrics.csv
    prune = sweep.early_terminate is not None
    reported, header_checked = 0, False
    with open(trial_dir / "log.txt", "w") as log:
        # a program of the user's own finds its folder here, and writes metrics.csv into it per epoch
        env = trial_environment({**os.environ, "BOLTZMATCH_TRIAL_DIR": str(trial_dir)}, gpu)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=die_with_parent)
        try:
            while True:
                try:  # returns as soon as the trial ends
                    process.wait(timeout=0.25)
                except subprocess.TimeoutExpired:
                    pass
                finished = process.poll() is not None
                if not header_checked:  # a wrong metric.name is found at the first epoch, not after the trial
                    header_checked = _check_metric_column(trial_dir, metric)
                if not prune:
                    if finished:
                        break
                    continue
                rows = metric_rows(trial_dir)
                for row in rows[reported:]:
                    value = _value(row, metric)
                    if value is not None and math.isfinite(value):
                        trial.report(value, int(float(row.get("epoch", reported + 1))))
                        if trial.should_prune():
                            process.kill()
                            process.wait()
                            raise optuna.TrialPruned(f"pruned at epoch {row.get('epoch')}")
                reported = len(rows)
                if finished:
                    break
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: this trial's point runs again elsewhere or on resume
            requeue(trial)
            raise
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    rows = metric_rows(trial_dir)
    if process.returncode != 0:
        tail = (trial_dir / "log.txt").read_text().strip().splitlines()[-1:] or ["no output"]
        message = f"exit code {process.returncode}: {tail[0]}"
        trial.set_user_attr("failure", message)
        print(f"sweep: trial {trial.number} failed: {message}", file=sys.stderr, flush=True)
        return float("nan")  # Optuna records a failed trial, without a traceback
    values_seen = [v for v in (_value(r, metric) for r in rows) if v is not None and math.isfinite(v)]
    if not values_seen:
        columns = ", ".join(rows[0]) if rows else "none"
        raise BoltzmatchError(f"metric.name: {metric!r} is not logged per epoch by the trials (columns: {columns})")
    return max(values_seen) if maximize else min(values_seen)


def _stop_callback(sweep: SweepConfig, cap: int):
    from optuna.trial import TrialState

    target = sweep.metric.get("target")

    def callback(study, trial) -> None:
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        failed = sum(t.state == TrialState.FAIL and counts_as_failure(t) for t in trials)
        best = None
        if any(t.state == TrialState.COMPLETE for t in trials):
            best = study.best_value
        running = sum(t.state == TrialState.RUNNING for t in trials)
        state = trial.state.name.lower()
        value = f", {sweep.metric['name']} {trial.value:.5g}" if trial.value is not None else ""
        total = "" if math.isinf(cap) else f"/{cap}"
        print(f"sweep: trial {trial.number} {state}{value} | done {finished}{total}, running {running}, "
              f"failed {failed}" + (f", best {best:.5g}" if best is not None else ""), file=sys.stderr, flush=True)
        reached = target is not None and best is not None and (
            best >= target if sweep.direction == "maximize" else best <= target)
        if finished >= cap or failed >= cap or reached:
            callback.stopped = True
            study.stop()

    callback.stopped = False
    return callback


def _optimize(sweep: SweepConfig, out: Path, storage: str | None, jobs: int, seed: int,
              count: int | None = None, gpus: list[str] | None = None) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is one line of ours, not a traceback
    for token in sweep.command or []:  # ${envvar:NAME} of this agent's environment: checked before any trial
        if is_envvar_macro(token) and token[len("${envvar:"):-1] not in os.environ:
            raise BoltzmatchError(f"command: {token}: the environment variable {token[9:-1]} is not set")
    record = study_record(out, storage)
    study = optuna.create_study(study_name=record["study_name"], storage=_storage(out, record),
                                load_if_exists=True, direction=sweep.direction,
                                sampler=_sampler(sweep, _resumed_seed(out, record, seed)),
                                pruner=hyperband(sweep.early_terminate) if sweep.early_terminate
                                else optuna.pruners.NopPruner())
    if study.metric_names is None:  # the dashboard then names the objective by the sweep's metric
        study.set_metric_names([sweep.metric["name"]])
    cap = sweep.n_grid() if sweep.method == "grid" else (sweep.run_cap or math.inf)  # no run_cap: until stopped
    if sweep.method == "grid" and sweep.run_cap:
        cap = min(cap, sweep.run_cap)
    ran = 0  # trials this agent has started
    slots = GpuSlots(gpus)

    def objective(trial) -> float:
        nonlocal ran
        ran += 1
        with slots.take() as gpu:
            return run_trial(trial, sweep, out, gpu)

    from optuna.trial import TrialState

    if sweep.method == "grid":
        queue_grid(study, sweep)
    callback = _stop_callback(sweep, cap)
    if math.isinf(cap) and count is None:
        print("sweep: no run_cap: trials run until Ctrl-C (finished trials are kept; --count N stops after N)",
              file=sys.stderr, flush=True)
    while True:  # rounds of at most the missing number of trials, so --jobs never overshoots run_cap
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        failed = sum(t.state == TrialState.FAIL and counts_as_failure(t) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)  # other agents' trials
        waiting = sum(t.state == TrialState.WAITING for t in trials)  # queued (grid points, retries)
        missing = waiting if sweep.method == "grid" else cap - done - running
        if count is not None:  # this agent's own trials (W&B's `wandb agent --count N`)
            missing = min(missing, count - ran)
            if ran >= count:
                break
        if done >= cap or failed >= cap or callback.stopped or (sweep.method == "grid" and not waiting + running):
            break
        if math.isinf(cap) and failed >= FAILURES_WITHOUT_CAP and not done:  # no run_cap: stop a hopeless sweep
            break
        if missing <= 0:  # the rest is running elsewhere: wait, and take over trials whose agent died
            import optuna

            optuna.storages.fail_stale_trials(study)
            time.sleep(record["heartbeat_s"])
            continue
        missing = int(min(missing, max(jobs, 1) * 4)) if math.isinf(missing) else int(missing)
        study.optimize(objective, n_trials=missing, n_jobs=min(jobs, missing),
                       callbacks=[callback])
    summary = summarize_study(study, sweep, out)
    if summary["fail"] and not summary["complete"] and not summary["pruned"]:
        failures = [f"trial {t.number}: {t.user_attrs.get('failure', 'failed')}"
                    for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL and counts_as_failure(t)]
        raise BoltzmatchError(f"{out}: every trial failed ({len(failures)}); the first: {failures[0]} "
                              f"(each trial's output: {out / 'trials'}/NNNN/log.txt)")
    return summary


def _resumed_seed(out: Path, record: dict, seed: int) -> int:
    """The sampler's seed moved on by the trials the study already holds: a resumed random or TPE sweep
    drew its first parameters again from the same seed (it repeated trial 0's values)."""
    import optuna

    try:
        trials = optuna.load_study(study_name=record["study_name"], storage=_storage(out, record))
        return seed + len(trials.get_trials(deepcopy=False))
    except KeyError:  # a new study
        return seed


def summarize_study(study, sweep: SweepConfig, out: Path) -> dict:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == getattr(TrialState, state.upper()) and counts_as_failure(t) for t in trials)
              for state in ("complete", "pruned", "fail", "running")}  # interrupted/surplus trials: not counted
    summary = {"sweep_dir": str(out), "metric": sweep.metric["name"], "direction": sweep.direction,
               "trials": len(trials), **counts}
    if counts["complete"]:
        best = study.best_trial
        summary.update(best_value=best.value, best_trial=best.number, best_values=best.user_attrs.get("values", {}))
    return summary


def run_sweep(config: str | Path, *, out: str | Path, storage: str | None = None, jobs: int = 1,
              seed: int = 0, count: int | None = None, gpus: str | list[str] | None = None,
              heartbeat: int | None = None) -> dict:
    """Start (or continue) the sweep of ``config`` (W&B sweep YAML) in folder ``out``; returns a summary.
    ``count``: run at most this many trials here (needed, or Ctrl-C, for a random/bayes sweep without
    ``run_cap``). ``gpus`` (``"0,1"``): one trial per GPU, each seeing only its own. ``heartbeat``: s between a
    running trial's heartbeats (default 5), fixed when the sweep starts; a trial silent for four of them (its
    agent killed, its machine gone) is failed and its parameters run again."""
    if heartbeat is not None and (not isinstance(heartbeat, int) or heartbeat < 1):
        raise BoltzmatchError(f"--heartbeat must be a whole number of seconds, at least 1, got {heartbeat}")
    sweep = load_sweep(config)
    if sweep.command is None and not sweep.program and "data" not in {p.name for p in sweep.parameters}:
        raise BoltzmatchError(f"{config}: parameters.data: the default command (boltzmatch train) needs "
                              "data: {value: FILE}, or give command or program")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / SWEEP_FILE
    text = Path(config).read_text()
    if saved.exists():
        before, now = yaml.safe_load(saved.read_text()), yaml.safe_load(text)
        if {k: v for k, v in before.items() if k != "run_cap"} != {k: v for k, v in now.items() if k != "run_cap"}:
            raise BoltzmatchError(f"{out}: holds a different sweep ({SWEEP_FILE}); choose another --out "
                                  "(only run_cap may change when a sweep is continued)")
    if not saved.exists() or yaml.safe_load(saved.read_text()) != yaml.safe_load(text):  # new, or run_cap raised
        from ..utils.atomic import atomic_write_text

        atomic_write_text(saved, text)
    study_record(out, storage, create=True, heartbeat=heartbeat)
    if jobs < 1:
        raise BoltzmatchError(f"--jobs must be at least 1, got {jobs}")
    _check_count(count)
    gpus = parse_gpus(",".join(gpus) if isinstance(gpus, list) else gpus)
    return _optimize(sweep, out, storage, check_jobs(jobs, gpus), seed, count, gpus)


def _check_count(count: int | None) -> None:
    if count is not None and count < 1:
        raise BoltzmatchError(f"--count must be at least 1, got {count}")


def agent(out: str | Path, *, storage: str | None = None, jobs: int = 1, seed: int | None = None,
          count: int | None = None, gpus: str | list[str] | None = None) -> dict:
    """Join the sweep in folder ``out`` (its study in ``storage``, default the folder's SQLite file)."""
    out = Path(out)
    if not (out / SWEEP_FILE).exists():
        raise BoltzmatchError(f"{out}: not a sweep folder (no {SWEEP_FILE})")
    sweep = load_sweep(out / SWEEP_FILE)
    _check_count(count)
    gpus = parse_gpus(",".join(gpus) if isinstance(gpus, list) else gpus)
    return _optimize(sweep, out, storage, check_jobs(jobs, gpus),
                     seed if seed is not None else int(time.time()) % 100_000, count, gpus)


def load_study(out: str | Path, storage: str | None = None):
    """The sweep's study, from the storage its folder records (or ``storage``); one line where there is none."""
    import optuna

    out = Path(out)
    if not (out / SWEEP_FILE).exists():
        raise BoltzmatchError(f"{out}: not a sweep folder (no {SWEEP_FILE})")
    record = study_record(out, storage)
    if record["storage"] is None and not (out / "study.db").exists():  # never create an empty study.db
        raise BoltzmatchError(f"{out}: no study.db and no storage recorded; pass --storage URL (the database the "
                              f"sweep ran in)")
    try:
        study = optuna.load_study(study_name=record["study_name"], storage=_storage(out, record))
    except KeyError:
        raise BoltzmatchError(f"{out}: the storage {record['storage'] or out / 'study.db'} holds no study "
                              f"{record['study_name']!r}; pass the --storage URL the sweep ran in") from None
    return study, load_sweep(out / SWEEP_FILE)


def _check_metric_column(trial_dir: Path, metric: str) -> bool:
    """True once the trial's metrics.csv has its header and a first row; a header without ``metric``
    is one line naming the columns there are (the agent stops; its trial process with it)."""
    path = trial_dir / "metrics.csv"
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return False
    if len(lines) < 2:  # the header may be written before the row: read them together
        return False
    columns = [c.strip() for c in lines[0].split(",")]
    if metric not in columns:
        raise BoltzmatchError(f"metric.name: {metric!r} is not a column of the trials' metrics.csv "
                              f"(columns: {', '.join(columns)})")
    return True


def metric_rows(trial_dir: Path) -> list[dict]:
    """A trial's metrics.csv rows (the run-directory reader, imported late: it brings torch)."""
    from ..runs.run_dir import read_metrics  # torch: only once a trial is read, not on import

    return read_metrics(trial_dir)
