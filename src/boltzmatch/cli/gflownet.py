"""``boltzmatch gflownet train|sample|evaluate``: GFlowNets sampling objects in proportion to a reward."""

from __future__ import annotations

import argparse
import json

from .common import add_alias, add_device_options

HELP = "GFlowNets (hypergrid, tetris, molecular torsions): train with tb, db, subtb or fm; sample; exact evaluation"


def add_parser(subparsers) -> None:
    from ..gflownet.losses import LOSSES

    p = subparsers.add_parser("gflownet", help=HELP, description=HELP)
    verbs = p.add_subparsers(title="verbs", metavar="VERB", dest="gflownet_verb", required=True)
    t = verbs.add_parser("train", help="train a GFlowNet into a run directory")
    t.add_argument("--env", choices=["hypergrid", "tetris", "torsions"], default="hypergrid")
    t.add_argument("--ndim", type=int, default=2, help="hypergrid dimensions")
    t.add_argument("--height", type=int, default=8, help="hypergrid side H (coordinates 0 … H−1); tetris board rows")
    t.add_argument("--width", type=int, default=4, help="tetris board columns")
    t.add_argument("--sharpness", type=float, default=5.0, help="tetris reward exp(sharpness · filled fraction)")
    add_alias(t, "--beta", "--sharpness", type=float)
    t.add_argument("--pieces", default="IJLOSTZ", help="tetris pieces to place, a subset of IJLOSTZ (e.g. IOJLT)")
    t.add_argument("--r0", type=float, default=0.1)
    t.add_argument("--r1", type=float, default=0.5)
    t.add_argument("--r2", type=float, default=2.0)
    t.add_argument("--molecule", default="alanine-dipeptide",
                   help="torsions: alanine-dipeptide (φ/ψ) or any system `generate` knows (ethanol, smiles:CCCO)")
    t.add_argument("--torsions", help="torsions: atom quadruples 'a,b,c,d;a,b,c,d' (default: φ/ψ for alanine "
                   "dipeptide, else the rotatable bonds RDKit finds)")
    t.add_argument("--bins", type=int, default=36, help="torsions: grid values per torsion")
    t.add_argument("--temperature", type=float, default=300.0, help="torsions: K in the reward exp(−βU)")
    t.add_argument("--calculator", default="openmm",
                   help="torsions: U from openmm, xtb, emt (as in generate) or a boltzmatch RUN_DIR")
    add_alias(t, "--energy", "--calculator")
    t.add_argument("--loss", choices=LOSSES, default="tb")
    t.add_argument("--batch-size", type=int, default=16, help="trajectories per update")
    t.add_argument("--n-trajectories", type=int, default=16_000, help="trajectories in all")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-log-z", type=float, default=0.1,
                   help="learning rate of log Z (tb, subtb) and of the edge flows' log-scale (fm) (default 0.1)")
    t.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    t.add_argument("--backward", choices=["uniform", "learned"], default="uniform", help="backward policy")
    t.add_argument("--epsilon", type=float,
                   help="ε-exploration: fraction of uniform random actions (default 0.1 for db, subtb, fm; 0 for tb)")
    t.add_argument("--policy-temperature", type=float, default=1.0,
                   help="temperature of the sampling policy's logits (exploration)")
    t.add_argument("--subtb-lambda", type=float, default=0.9)
    t.add_argument("--replay", type=int, default=0, help="replay buffer capacity in trajectories (0: none)")
    t.add_argument("--replay-fraction", type=float, default=0.5, help="share of each batch drawn from the buffer")
    t.add_argument("--eval-every", type=int, default=100, help="iterations between exact evaluations/checkpoints")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="run directory to create")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its checkpoint")
    t.add_argument("--quiet", action="store_true")
    add_device_options(t)
    t.set_defaults(run=run_train)
    s = verbs.add_parser("sample", help="draw objects: .npy of terminal states")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=1000)
    s.add_argument("--out", required=True, help="FILE.npy")
    s.add_argument("--seed", type=int, default=0)
    add_device_options(s)
    s.set_defaults(run=run_sample)
    e = verbs.add_parser("evaluate", help="exact L1/TV/KL/JSD and log Z (enumerable environments), plots")
    e.add_argument("run_dir")
    e.add_argument("--samples", type=int, default=10_000, help="samples for the empirical L1")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_device_options(e)
    e.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from ..errors import BoltzmatchError
    from ..gflownet import train_gflownet
    from ..gflownet.train import format_gflownet_summary

    if args.resume:
        summary = train_gflownet(out=args.resume, resume=True, progress=not args.quiet, device=args.device or "auto")
    else:
        if not args.out:
            raise BoltzmatchError("gflownet train needs --out RUN_DIR (or --resume RUN_DIR)")
        summary = train_gflownet(
            args.env, out=args.out, env_options=_env_options(args),
            loss=args.loss, batch_size=args.batch_size, n_trajectories=args.n_trajectories, lr=args.lr,
            lr_log_z=args.lr_log_z, hidden=args.hidden, backward=args.backward, epsilon=args.epsilon,
            policy_temperature=args.policy_temperature, subtb_lambda=args.subtb_lambda, replay=args.replay,
            replay_fraction=args.replay_fraction, eval_every=args.eval_every,
            seed=args.seed, progress=not args.quiet, overwrite=args.overwrite, device=args.device or "auto")
    print(format_gflownet_summary(summary))
    return 0


def _env_options(args: argparse.Namespace) -> dict:
    from ..errors import BoltzmatchError

    if args.env == "tetris":
        return {"width": args.width, "height": args.height, "sharpness": args.sharpness, "pieces": args.pieces}
    if args.env == "torsions":
        options = {"molecule": args.molecule, "bins": args.bins, "temperature": args.temperature,
                   "calculator": args.calculator}
        if args.torsions:
            try:
                options["torsions"] = [[int(i) for i in quad.split(",")] for quad in args.torsions.split(";")]
            except ValueError:
                raise BoltzmatchError(f"--torsions: expected quadruples like '4,6,8,14;6,8,14,16', "
                                      f"got {args.torsions!r}") from None
        return options
    return {"ndim": args.ndim, "height": args.height, "r0": args.r0, "r1": args.r1, "r2": args.r2}


def run_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ..errors import BoltzmatchError
    from ..gflownet import load_gflownet
    from ..gflownet.sampler import sample_trajectories
    from ..utils.atomic import atomic_path
    from ..utils.device import default_device, resolve_device

    out = Path(args.out)
    if out.suffix != ".npy":
        raise BoltzmatchError(f"{out}: objects are written as .npy")
    with default_device(resolve_device(args.device)):
        env, model, _ = load_gflownet(args.run_dir)
        generator = torch.Generator(device=torch.get_default_device()).manual_seed(args.seed)
        batch = sample_trajectories(env, model, args.n, generator)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, batch.terminal.cpu().numpy())
    print(f"wrote {batch.n} objects of shape {tuple(batch.terminal.shape[1:])} to {out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..gflownet.report import evaluate_run
    from ..gflownet.train import format_gflownet_summary
    from ..utils.device import default_device, resolve_device

    with default_device(resolve_device(args.device)):
        result = evaluate_run(args.run_dir, samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_gflownet_summary(result))
    return 0


