"""``boltzmatch generative train|sample|compare``: EBM, JEM, diffusion, GAN and VAE on 2-D toys,
digits and molecules, judged with one metric set."""

from __future__ import annotations

import argparse

import yaml

from .common import add_device_options

HELP = "generative models (ebm, jem, classifier, diffusion, gan, vae): train, sample, compare"


def add_parser(subparsers) -> None:
    from ..generative.datasets import DATASETS
    from ..generative.train import FAMILIES

    p = subparsers.add_parser("generative", help=HELP, description=HELP)
    verbs = p.add_subparsers(title="verbs", metavar="VERB", dest="generative_verb", required=True)
    t = verbs.add_parser("train", help="train one model into a run directory")
    t.add_argument("family", nargs="?", choices=list(FAMILIES))
    t.add_argument("--data", help=f"{' | '.join(DATASETS)} | a structure file (ebm and diffusion)")
    t.add_argument("--out", help="run directory to create")
    t.add_argument("--epochs", type=int, help="default: the family's number of optimiser steps over the data")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="Adam learning rate (default: the family's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a family option (YAML value), e.g. --option sde=ve --option hidden=[128,128]")
    t.add_argument("--temperature", type=float, help="K: molecules only (the data's temperature)")
    t.add_argument("--max-minutes", type=float, help="stop after the epoch that crosses this wall time")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_options(t)
    t.set_defaults(run=run_train)

    s = verbs.add_parser("sample", help="draw samples from a run (.npy for vectors, extxyz for molecules)")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=1000, help="number of samples")
    s.add_argument("--out", required=True, help="FILE.npy (vectors) or FILE.xyz (molecules)")
    s.add_argument("--sampler", help="diffusion: euler-maruyama (default), ode, annealed-langevin")
    s.add_argument("--steps", type=int, help="sampler steps (diffusion: time steps; EBM: SGLD steps)")
    s.add_argument("--label", type=int, help="class-conditional samples of this class (jem)")
    s.add_argument("--seed", type=int, default=0)
    add_device_options(s)
    s.set_defaults(run=run_sample)

    c = verbs.add_parser("compare", help="judge runs on held-out data beside the floor: report.md, compare.json")
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--out", required=True, help="report folder")
    c.add_argument("--no-likelihood", action="store_true", help="skip NLL (the ODE is the slow part)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")
    add_device_options(c)
    c.set_defaults(run=run_compare)


def _options(pairs: list[str]) -> dict:
    from ..errors import BoltzmatchError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BoltzmatchError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise BoltzmatchError(f"--option {pair!r}: the value is not valid YAML") from None
    return options


def run_train(args: argparse.Namespace) -> int:
    from ..errors import BoltzmatchError
    from ..generative.commands import resume_family, train_family

    if args.resume:
        _, table = resume_family(args.resume, progress=not args.quiet, device=args.device or "auto")
    elif not args.family or not args.data or not args.out:
        raise BoltzmatchError("generative train needs FAMILY, --data and --out (or --resume RUN_DIR)")
    else:
        _, table = train_family(args.family, args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                                lr=args.lr, seed=args.seed, options=_options(args.option),
                                temperature=args.temperature, max_minutes=args.max_minutes, progress=not args.quiet,
                                device=args.device or "auto")
    print(table)
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..generative.commands import sample_to_file
    from ..utils.device import default_device, resolve_device

    with default_device(resolve_device(args.device)):
        print(sample_to_file(args.run_dir, args.n, out=args.out, seed=args.seed, steps=args.steps,
                             sampler=args.sampler, label=args.label))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..generative.compare import compare_generative, format_generative_report

    result = compare_generative(args.run_dirs, out=args.out, seed=args.seed, likelihood=not args.no_likelihood,
                                progress=not args.quiet, device=args.device or "auto")
    print(format_generative_report(result))
    return 0
