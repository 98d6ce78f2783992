"""Options shared by several commands (same names as the Python arguments)."""

from __future__ import annotations

import argparse
import sys


class DeprecatedAlias(argparse.Action):
    """An old flag that still works for one release: stores into the new flag's destination and prints a
    one-line notice naming the new flag."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"boltzmatch: {option_string} is deprecated and goes in the next release; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_alias(parser, old: str, new: str, **kwargs) -> None:
    """Accept ``old`` as a deprecated spelling of the flag ``new`` (same type and choices, hidden from --help)."""
    parser.add_argument(old, dest=new.lstrip("-").replace("-", "_"), action=DeprecatedAlias, new=new,
                        help=argparse.SUPPRESS, **kwargs)


def add_cluster_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers`` and ``--scheduler``: where ``what`` runs (this process, a local Dask cluster, a running one)."""
    group = parser.add_argument_group("cluster (Dask)")
    group.add_argument("--workers", type=int, default=1,
                       help=f"run {what} on a local Dask cluster of N single-threaded processes (default 1: in "
                            "this process); the output is the same whatever N")
    group.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help=f"run {what} on a running Dask cluster (dask scheduler/dask worker, or dask-jobqueue "
                            "on SLURM/PBS); every worker needs boltzmatch and the reference code installed")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--energy-key``, ``--forces-key``, ``--energy-unit``, ``--length-unit``."""
    group = parser.add_argument_group("data")
    group.add_argument("--energy-key", help="where the energy lives (default: energy, REF_energy, energy_U0, ...)")
    group.add_argument("--forces-key", help="where the forces live (default: forces, REF_forces)")
    group.add_argument("--energy-unit", help="energy unit of the file if it does not say: eV, kcal/mol, hartree, ...")
    group.add_argument("--length-unit", help="length unit of the file if it does not say: angstrom, bohr, nm")


def data_kwargs(args: argparse.Namespace) -> dict:
    """The reader keyword arguments from parsed data options."""
    return dict(
        energy_key=args.energy_key, forces_key=args.forces_key,
        energy_unit=args.energy_unit, length_unit=args.length_unit,
    )


def add_objective_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--objective``, ``--temperature``, ``--sigma``, ``--n-probes``, ``--probe``."""
    from ..objectives.registry import OBJECTIVES

    group = parser.add_argument_group("objective")
    group.add_argument("--objective", choices=OBJECTIVES, default=default,
                       help="energy, forces, energy-forces, score matching (fisher, ism, ssm, dsm), "
                            "contrastive divergence (cd), or fisher plus cd against the model's own MD frames "
                            "(fisher-cd, with --cd-option negatives=FILE)")
    group.add_argument("--temperature", type=float, help="K, for score objectives (β = 1/k_B T)")
    group.add_argument("--sigma", type=float, nargs="+",
                       help="dsm noise levels, Å (default: ⅛ of the narrowest bond-length spread in the data)")
    group.add_argument("--antithetic", action=argparse.BooleanOptionalAction, default=None,
                       help="dsm: evaluate x + σε and x − σε (twice the cost, much less variance at small σ; "
                            "default on)")
    group.add_argument("--huber-delta", type=float,
                       help="fisher: eV/Å beyond which force residuals weigh linearly (robust to a few frames "
                            "far from equilibrium; default: off, the plain Fisher divergence)")
    group.add_argument("--n-probes", type=int, default=1, help="ssm Hutchinson probes per structure")
    group.add_argument("--probe", choices=["rademacher", "gaussian"], default="rademacher", help="ssm probe")
    group.add_argument("--cd-option", action="append", default=[], metavar="KEY=VALUE",
                       help="cd sampler: steps (MD steps per training step, 20), timestep (fs, 0.5), friction "
                            "(1/fs, 0.01), buffer (chains, 2048), reinit (0.05), alpha (regulariser, 0); "
                            "fisher-cd also: negatives (a file of the model's MD frames), weight (of cd, 1)")


def cd_options(args: argparse.Namespace) -> dict:
    """``--cd-option KEY=VALUE`` pairs as a dict of numbers (``negatives``: a file name)."""
    from ..errors import BoltzmatchError

    options = {}
    for pair in args.cd_option:
        key, sep, value = pair.partition("=")
        if key == "negatives" and sep and value:
            options[key] = value
            continue
        try:
            options[key] = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            sep = ""
        if not sep:
            raise BoltzmatchError(f"--cd-option {pair!r}: expected KEY=NUMBER")
    return options


def add_criterion_options(parser: argparse.ArgumentParser) -> None:
    """``--criterion``, ``--max-deviation``, ``--persist``: what counts as a collapse (simulate, stability)."""
    group = parser.add_argument_group("collapse criterion")
    group.add_argument("--criterion", choices=["auto", "graph", "bond", "rdf"], default="auto",
                       help="graph: a bond graph the reference never visits, lasting --persist fs; bond: Fu et "
                            "al.'s bond rule, any bond --max-deviation Å from its reference mean; rdf: their h(r) "
                            "rule for liquids and solids, h(r) of the last --rdf-window fs beyond "
                            "--max-rdf-deviation of the reference's; auto (default): graph for molecules (also "
                            "in a periodic box), rdf for crystals and surfaces")
    group.add_argument("--max-deviation", type=float, default=0.5,
                       help="Å beyond its reference mean where a reference bond breaks (default 0.5)")
    group.add_argument("--persist", type=float, default=50.0,
                       help="fs a graph the reference never visits must last to count (default 50; transition "
                            "states of proton transfer live 10-30 fs)")
    group.add_argument("--rdf-window", type=float, default=1000.0,
                       help="fs of checks whose h(r) the rdf criterion compares with the reference's (default 1000)")
    group.add_argument("--max-rdf-deviation", type=float, default=0.25,
                       help="∫|h − h_ref| dr (0 … 2) beyond which the rdf criterion calls a collapse (default 0.25)")


def add_device_options(parser: argparse.ArgumentParser, precision: bool = False, cuda_graphs: bool = False) -> None:
    """``--device`` (every command that computes); for training, ``--precision``; for training and MD (``precision``
    or ``cuda_graphs``), ``--cuda-graphs``."""
    from ..utils.device import DEVICE_HELP, PRECISION_HELP, PRECISIONS

    group = parser.add_argument_group("device")
    group.add_argument("--device", default=None, help=f"where to compute: {DEVICE_HELP} (default auto)")
    if precision:
        group.add_argument("--precision", choices=PRECISIONS, default=None,
                           help=PRECISION_HELP + " (default float32)")
    if precision or cuda_graphs:
        group.add_argument("--cuda-graphs", action="store_true", default=None,
                           help="on CUDA, replay the model's work as CUDA graphs: each batch shape's training step "
                                "(float32/tf32, supervised or fisher objectives) and MD's force call (molecules; "
                                "SchNet, PaiNN, MACE); docs/gpu.md")


def device_kwargs(args: argparse.Namespace) -> dict:
    """``device`` (and ``precision``, ``cuda_graphs``) as given; absent ones keep the function's default (or a
    resumed run's)."""
    return {key: getattr(args, key) for key in ("device", "precision", "cuda_graphs")
            if getattr(args, key, None) is not None}
