"""``boltzmatch landscape RUN_DIR --data DATA``: the loss surface around a trained model."""

from __future__ import annotations

import argparse

from .common import add_data_options, add_device_options, data_kwargs, device_kwargs

HELP = "loss landscape around a trained model (random, two parameters, or a line to another run); sharpness"


def add_parser(subparsers) -> None:
    from ..analysis.landscape import CLASSIFIER_LOSSES, LANDSCAPE_OBJECTIVES

    p = subparsers.add_parser("landscape", help=HELP, description=HELP)
    p.add_argument("run_dir", help="a run directory (an energy model; for hinge and cross-entropy a generative "
                                   "jem or classifier run)")
    p.add_argument("--data", help="structures the loss is evaluated on (energy models; a classifier uses its own "
                                  "data set's held-out part)")
    p.add_argument("--out", required=True, help="folder for landscape.npz, landscape.json and plots")
    p.add_argument("--objective", choices=LANDSCAPE_OBJECTIVES + CLASSIFIER_LOSSES, default="fisher",
                   help="loss (default fisher); hinge and cross-entropy for classifiers")
    p.add_argument("--temperature", type=float, help="K, for score objectives (default: the data's recorded one)")
    p.add_argument("--directions", default="random",
                   help="random | params:NAME[i],NAME[j] | line:OTHER_RUN_DIR (default random)")
    p.add_argument("--span", type=float, default=1.0, help="grid half-width in direction units (default 1)")
    p.add_argument("--grid", type=int, default=21, help="points per axis (default 21)")
    p.add_argument("--max-frames", type=int, default=200,
                   help="frames (a classifier: held-out samples) the loss is averaged over (default 200)")
    p.add_argument("--sigma", type=float, nargs="+",
                   help="dsm noise levels, Å (default: ⅛ of the narrowest bond-length spread in the data)")
    p.add_argument("--sharpness-epsilon", type=float, default=0.05, help="relative perturbation size (default 0.05)")
    p.add_argument("--sharpness-samples", type=int, default=10, help="perturbations averaged (default 10)")
    p.add_argument("--vectorize", action="store_true", help="evaluate chunks of points with torch.func.vmap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_options(p)
    add_device_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.landscape import CLASSIFIER_LOSSES, landscape
    from ..errors import BoltzmatchError
    from ..utils.table import format_table

    common = dict(out=args.out, directions=args.directions, span=args.span, grid=args.grid,
                  sharpness_epsilon=args.sharpness_epsilon, sharpness_samples=args.sharpness_samples,
                  seed=args.seed, progress=not args.quiet)
    if args.objective in CLASSIFIER_LOSSES:
        from ..generative.landscape import classifier_landscape

        r = classifier_landscape(args.run_dir, loss=args.objective, max_samples=args.max_frames, **common)
    else:
        if not args.data:
            raise BoltzmatchError(f"--data is needed: the {args.objective} landscape is evaluated on structures")
        r = landscape(args.run_dir, args.data, objective=args.objective, temperature=args.temperature,
                      max_frames=args.max_frames, sigma=args.sigma, vectorize=args.vectorize,
                      data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
                      **device_kwargs(args), **common)
    rows = [["model", r["run_dir"]], ["objective / frames", f"{r['objective']} / {r['n_frames']}"],
            ["directions", r["directions"]], ["grid", f"{r['grid']} per axis, span {r['span']}"],
            ["loss at the model", r["loss_at_model"]], ["loss min / max", f"{r['loss_min']:.4g} / {r['loss_max']:.4g}"],
            [f"sharpness (ε = {r['sharpness_epsilon']})", r["sharpness"]]]
    if "held_out_accuracy" in r:
        rows.append(["held-out accuracy at the model", f"{100 * r['held_out_accuracy']:.1f} %"])
    if "loss_at_1" in r:
        rows.append(["loss at the other run (α = 1)", r["loss_at_1"]])
    print(format_table(rows, title="Loss landscape"))
    print(f"written: {args.out}/landscape.npz, landscape.json, plots")
    return 0
