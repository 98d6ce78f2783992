"""``boltzmatch simulate RUN_DIR --start DATA``: batched MD with a trained model, stability per replica."""

from __future__ import annotations

import argparse

from .common import add_criterion_options, add_data_options, add_device_options, data_kwargs

HELP = ("run batched MD with a trained model; replicas stop when they collapse; summary.json, trajectories and "
        "simulation.png")


def add_parser(subparsers) -> None:
    from ..simulate.barostat import COUPLINGS, DEFAULT_BAROSTAT_TAU, DEFAULT_COMPRESSIBILITY
    from ..simulate.integrators import INTEGRATORS
    from ..simulate.output import TRAJECTORY_FORMATS

    p = subparsers.add_parser("simulate", help=HELP, description=HELP)
    p.add_argument("run_dir", help="a run directory from 'boltzmatch train' or 'finetune'")
    p.add_argument("--start", required=True, help="structures to draw starting frames from")
    p.add_argument("--reference", help="structures that define what the molecule does: its bond graphs and "
                                       "mean bond lengths (default: --start)")
    p.add_argument("--out", required=True, help="simulation folder")
    p.add_argument("--temperature", type=float, default=500.0, help="K (default 500)")
    p.add_argument("--replicas", type=_replicas, default=32,
                   help="replicas simulated together (default 32); auto: as many as the GPU's memory holds")
    p.add_argument("--time", type=float, default=10.0, help="ps per replica (default 10)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--integrator", choices=INTEGRATORS, default="langevin", help="default langevin (BAOAB)")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (default 0.01)")
    p.add_argument("--tau", type=float, default=100.0, help="Nosé–Hoover period, fs (default 100)")
    p.add_argument("--interval", type=int, default=20, help="steps between frames and thermo lines (default 20)")
    p.add_argument("--check-interval", type=int, default=10, help="steps between stability checks (default 10)")
    p.add_argument("--format", choices=TRAJECTORY_FORMATS, default="extxyz", help="trajectory files (default extxyz)")
    p.add_argument("--max-temperature", type=float, help="K; hotter replicas stop (default 5 × --temperature)")
    p.add_argument("--no-trajectories", action="store_true",
                   help="write thermo.csv, summary.json and simulation.png only")
    p.add_argument("--seed", type=int, default=0, help="starting frames, velocities and noise (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--exact-filters", action="store_true",
                   help="evaluate SchNet's filter networks exactly, not from their tables (slower; "
                        "forces differ by < 1e-5 eV/Å)")
    p.add_argument("--compile", action="store_true",
                   help="evaluate the model under torch.compile (a compilation first; 0.9x on a 2-core CPU, "
                        "measure on your GPU with benchmarks/accelerator.py --part compile)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    npt = p.add_argument_group("pressure (NPT; crystals and other 3-D periodic structures, with langevin)")
    npt.add_argument("--pressure", type=float,
                     help="GPa; rescale every replica's cell to hold it (stochastic cell rescaling; default: NVT)")
    npt.add_argument("--barostat-tau", type=float, default=DEFAULT_BAROSTAT_TAU,
                     help=f"the barostat's relaxation time, fs (default {DEFAULT_BAROSTAT_TAU:g})")
    npt.add_argument("--compressibility", type=float, default=DEFAULT_COMPRESSIBILITY,
                     help=f"1/GPa the barostat assumes (default {DEFAULT_COMPRESSIBILITY:g}, a metal's; water 0.45): "
                          "with --barostat-tau it sets how fast the volume moves, not where it settles")
    npt.add_argument("--pressure-coupling", choices=tuple(COUPLINGS), default="isotropic",
                     help="which cell axes scale together: all three (default), x with y and z alone "
                          "(semiisotropic), or each alone (anisotropic: a crystal's c/a; cells along x, y, z)")
    add_criterion_options(p)
    add_data_options(p)
    add_device_options(p, cuda_graphs=True)
    p.set_defaults(run=run)


def _replicas(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..simulate import format_simulation, simulate

    try:
        summary = simulate(
            args.run_dir, args.start, out=args.out, temperature=args.temperature, replicas=args.replicas,
            time=args.time, timestep=args.timestep, integrator=args.integrator, friction=args.friction, tau=args.tau,
            interval=args.interval, check_interval=args.check_interval, seed=args.seed, format=args.format,
            reference=args.reference, max_deviation=args.max_deviation, max_temperature=args.max_temperature,
            criterion=args.criterion, persist=args.persist, rdf_window=args.rdf_window,
            max_rdf_deviation=args.max_rdf_deviation, pressure=args.pressure, barostat_tau=args.barostat_tau,
            compressibility=args.compressibility, pressure_coupling=args.pressure_coupling,
            write_trajectories=not args.no_trajectories, resume=args.resume, device=args.device or "auto",
            progress=not args.quiet, exact_filters=args.exact_filters, compile_forces=args.compile,
            cuda_graphs=bool(args.cuda_graphs),
            data_options={k: v for k, v in data_kwargs(args).items() if v is not None},
        )
    except KeyboardInterrupt:
        print(f"interrupted: trajectories, thermo.csv and a partial summary.json are in {args.out}; "
              "--resume continues")
        return 130
    from ..analysis.md_plots import simulation_plot

    print(format_simulation(summary, title=f"Simulation of {args.run_dir} ({args.out})"))
    print(f"summary: {args.out}/summary.json; plot: {simulation_plot(args.out)}")
    return 0
