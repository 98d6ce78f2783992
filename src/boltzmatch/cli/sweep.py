"""``boltzmatch sweep run|agent|report|best|dashboard``: W&B-style sweeps run by Optuna, no account, no server."""

from __future__ import annotations

import argparse

HELP = "hyperparameter sweeps from a W&B sweep YAML, run locally by Optuna (SQLite or PostgreSQL storage)"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help=HELP, description=HELP)
    verbs = p.add_subparsers(title="verbs", metavar="VERB", dest="sweep_verb", required=True)
    r = verbs.add_parser("run", help="start (or continue) a sweep in a folder")
    r.add_argument("config", help="W&B sweep YAML: method, metric, parameters, run_cap, early_terminate, command")
    r.add_argument("--out", required=True, help="sweep folder (sweep.yaml, study.db, trials/)")
    r.add_argument("--heartbeat", type=int, metavar="S",
                   help="seconds between a running trial's heartbeats (default 5; every agent keeps the sweep's): "
                        "a trial silent for four of them, its agent killed or its machine gone, runs again")
    for q in (r, verbs.add_parser("agent", help="join a sweep from this or another machine")):
        if q is not r:
            q.add_argument("sweep_dir", help="the sweep folder")
        q.add_argument("--storage", help="database URL shared by agents, e.g. postgresql://user@host/db "
                                         "(default: the folder's study.db)")
        q.add_argument("--jobs", type=int, default=1, help="trials side by side on this machine")
        q.add_argument("--gpus", metavar="0,1,…", help="spread trials over these GPUs, one trial per GPU seeing only "
                                                      "its own (CUDA_VISIBLE_DEVICES); --jobs defaults to their number")
        q.add_argument("--seed", type=int, help="sampler seed")
        q.add_argument("--count", type=int, help="run at most N trials here, then stop (as `wandb agent --count N`; "
                                                 "a random/bayes sweep without run_cap runs until this or Ctrl-C)")
        q.set_defaults(run=run)
    for verb, text in (("report", "report.md and plots from a sweep folder"),
                       ("best", "the best trial's values and command as best.yaml")):
        q = verbs.add_parser(verb, help=text)
        q.add_argument("sweep_dir", help="the sweep folder")
        q.add_argument("--storage", help="database URL (default: the folder's study.db)")
        q.set_defaults(run=run)
    q = verbs.add_parser("dashboard", help="a live view of a sweep in the browser (Optuna's dashboard)")
    q.add_argument("sweep_dir", help="the sweep folder")
    q.add_argument("--storage", help="database URL (default: the one the folder records, or its study.db)")
    q.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    q.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import agent, best_config, format_sweep_summary, run_sweep, write_report

    if args.sweep_verb == "run":
        summary = run_sweep(args.config, out=args.out, storage=args.storage, jobs=args.jobs,
                            seed=0 if args.seed is None else args.seed, count=args.count, gpus=args.gpus,
                            heartbeat=args.heartbeat)
        print(format_sweep_summary(summary))
    elif args.sweep_verb == "agent":
        print(format_sweep_summary(agent(args.sweep_dir, storage=args.storage, jobs=args.jobs, seed=args.seed,
                                         count=args.count, gpus=args.gpus)))
    elif args.sweep_verb == "dashboard":
        from ..sweep.dashboard import serve_dashboard

        try:
            serve_dashboard(args.sweep_dir, storage=args.storage, host=args.host, port=args.port)
        except KeyboardInterrupt:
            print("dashboard stopped")
    elif args.sweep_verb == "report":
        result = write_report(args.sweep_dir, storage=args.storage)
        print(format_sweep_summary(result["summary"]))
        print(f"report: {result['report']}")
    else:
        best = best_config(args.sweep_dir, storage=args.storage)
        print(f"best trial {best['trial']}: {best['metric']} = {best['value']:.5g}")
        print("run it again: " + " ".join(best["command"]))
        print(f"written: {best['path']}")
    return 0
