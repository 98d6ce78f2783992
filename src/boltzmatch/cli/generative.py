"""``boltzmatch generative train|sample|compare``: EBM, JEM, diffusion, GAN and VAE on 2-D toys,
digits and molecules, judged with one metric set."""

from __future__ import annotations

import argparse

import yaml

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
    t.set_defaults(run=run_train)

    s = verbs.add_parser("sample", help="draw samples from a run (.npy for vectors, extxyz for molecules)")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=1000, help="number of samples")
    s.add_argument("--out", required=True, help="FILE.npy (vectors) or FILE.xyz (molecules)")
    s.add_argument("--sampler", help="diffusion: euler-maruyama (default), ode, annealed-langevin")
    s.add_argument("--steps", type=int, help="sampler steps (diffusion: time steps; EBM: SGLD steps)")
    s.add_argument("--label", type=int, help="class-conditional samples of this class (jem)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(run=run_sample)

    c = verbs.add_parser("compare", help="judge runs on held-out data beside the floor: report.md, compare.json")
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--out", required=True, help="report folder")
    c.add_argument("--no-likelihood", action="store_true", help="skip NLL (the ODE is the slow part)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")
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
    from ..generative import train_generative
    from ..generative.datasets import is_structure_file
    from ..generative.train import format_generative_summary

    if args.resume:
        from ..runs import run_dir as rd

        if rd.read_config(args.resume).get("kind") != "generative":
            return _train_molecular(args, resume=True)
        summary = train_generative(None, None, out=args.resume, resume=True, progress=not args.quiet)
        print(format_generative_summary(summary))
        return 0
    if not args.family or not args.data or not args.out:
        raise BoltzmatchError("generative train needs FAMILY, --data and --out (or --resume RUN_DIR)")
    if is_structure_file(args.data):
        return _train_molecular(args, resume=False)
    summary = train_generative(args.family, args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, seed=args.seed, options=_options(args.option),
                               max_minutes=args.max_minutes, progress=not args.quiet)
    print(format_generative_summary(summary))
    return 0


def _train_molecular(args: argparse.Namespace, resume: bool) -> int:
    """Molecules: an EBM is an EnergyModel trained by contrastive divergence (``train --objective cd``);
    diffusion is a noise-conditional energy model (:mod:`boltzmatch.generative.molecular`)."""
    from ..errors import BoltzmatchError
    from ..generative.molecular import train_molecular_diffusion
    from ..training import format_train_summary, train

    if resume:  # both are ordinary energy-model runs
        summary = train(None, out=args.resume, resume=True, progress=not args.quiet)
        print(format_train_summary(summary))
        return 0
    options = _options(args.option)
    if args.family == "ebm":
        summary = train(args.data, out=args.out, objective="cd", temperature=args.temperature,
                        model=options.pop("model", "schnet"), epochs=args.epochs or 100,
                        batch_size=args.batch_size or 32, lr=args.lr or 1e-3, seed=args.seed,
                        max_minutes=args.max_minutes, progress=not args.quiet, cd_options=options)
    elif args.family == "diffusion":
        summary = train_molecular_diffusion(args.data, out=args.out, temperature=args.temperature,
                                            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                            seed=args.seed, options=options, max_minutes=args.max_minutes,
                                            progress=not args.quiet)
    else:
        raise BoltzmatchError(f"{args.family} works on vectors (toys, digits); for molecules use ebm or diffusion")
    print(format_train_summary(summary))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..errors import BoltzmatchError
    from ..generative import load_generative
    from ..runs import run_dir as rd
    from ..utils.atomic import atomic_path

    out = Path(args.out)
    config = rd.read_config(args.run_dir)
    kind = config.get("kind")
    if config["model"].get("noise_levels"):
        from ..generative.molecular import sample_molecules

        frames = sample_molecules(args.run_dir, args.n, seed=args.seed, steps=args.steps)
        from ..data.writers import write_structures

        write_structures(out, frames)
        print(f"wrote {len(frames)} structures to {out}")
        return 0
    if kind != "generative":
        raise BoltzmatchError(f"{args.run_dir}: not a generative run; sample an energy model with "
                              "`boltzmatch simulate`")
    if out.suffix != ".npy":
        raise BoltzmatchError(f"{out}: vectors are written as .npy")
    run = load_generative(args.run_dir)
    labels = None if args.label is None else np.full(args.n, args.label)
    if labels is not None and not run.family.needs_labels:
        raise BoltzmatchError(f"--label: {run.family.name} has no classes (only jem samples per class)")
    options = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps)) if v is not None}
    samples = run.sample(args.n, seed=args.seed, labels=labels, **options)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, samples.astype(np.float32))
    picture = _picture(run, samples, out.with_suffix(".png"))
    also = f" and {picture}" if picture else ""
    print(f"wrote {len(samples)} samples of dimension {samples.shape[1]} to {out}{also}")
    return 0


def _picture(run, samples, path):
    """A sample grid for images, a density map beside held-out data for 2-D toys; None otherwise."""
    from ..analysis import plots
    from ..generative.train import vectors_of

    vectors = vectors_of(run)
    if vectors.image_shape is not None:
        return plots.image_grid(samples[:100], path, shape=vectors.image_shape, title=f"{run.family.name} samples")
    if vectors.dim == 2:
        return plots.density_panels({"held-out data": vectors.held_out, "samples": samples}, path,
                                    title=f"{vectors.name}: {run.family.name}")
    return None


def run_compare(args: argparse.Namespace) -> int:
    from ..generative.compare import compare_generative, format_generative_report

    result = compare_generative(args.run_dirs, out=args.out, seed=args.seed, likelihood=not args.no_likelihood,
                                progress=not args.quiet)
    print(format_generative_report(result))
    return 0
