"""GFlowNets (issue 14): every loss on enumerable targets judged exactly, and torchgfn side by side.

Part ``enumerable`` → benchmarks/results/gflownet.{json,md}:
- hypergrid ndim 2, height 8 (torchgfn's reward, R0 0.1, R1 0.5, R2 2) and alanine dipeptide φ/ψ on a
  36 × 36 torsion grid, R = exp(−βU) with Amber (OpenMM) at 300 K, the rest of the molecule held
  fixed: each loss on-policy (ε = 0) and with ε = 0.1, batch 64, 160,000 trajectories; exact L1 and
  log Z, the empirical L1 from 10,000 samples as torchgfn reports it. For the torsions also the JSD
  of the GFlowNet's φ/ψ histogram to a reference MD histogram (OpenMM, 300 K, flexible molecule:
  a different distribution from the rigid grid's, shown for scale next to the grid's own JSD to it).
- Tetris 4 × 4 with pieces I, O, J, L, T, R = exp(5 · filled fraction): exact TV and whether every
  mode (terminal boards at most one piece short of the fullest) appears among 10,000 samples.

Part ``torchgfn`` → benchmarks/results/gflownet_torchgfn.{json,md}: torchgfn 2.4.1 in its own venv
(benchmarks/.peers/torchgfn, numpy < 2; installed on first use) against boltzmatch at torchgfn's test
settings: batch 128, 32,000 trajectories, seed 1, 2 × 256 MLP, Adam lr 1e-3, log Z lr 0.1, on-policy,
learned backward policy; TB on 8², 16², 8⁴, 16⁴, FM on 8², 8⁴. Both report the empirical L1 from
200,000 samples; boltzmatch also the exact L1/TV, and next to them the L1 that 200,000 exact draws
from R/Z score (mean ± sd over ten seeds): what a perfect sampler reports, which dominates the
empirical L1 of the 4-dimensional grids. Wall time is the training loop only, both sides
alternating in one run (``--rounds``, median).

Part ``seeds`` → benchmarks/results/gflownet_torchgfn_seeds.{json,md}: the same TB runs on 8⁴ and 16⁴
at seeds 1 … ``--seeds`` (5), both sides: the empirical L1's mean and spread over seeds.

Part ``process`` → benchmarks/results/gflownet_process.{json,md}: TB at the same settings on 8² and 8⁴,
both sides timed as whole processes (start-up, training, our CLI's final evaluation; torchgfn's script
less its 200,000-sample validation), round robin, the ratio per round; then 8⁴ at 128,000 and 320,000
trajectories: the budget at which it reaches exact L1 ≤ 0.1.

Part ``torsions12`` → benchmarks/results/gflownet_torsions12.{json,md}: every loss with its defaults on alanine
dipeptide's φ/ψ at 12 × 12 bins (OpenMM, 300 K), 32,000 trajectories, ``--rounds`` seeds; FM also at ε 0.

Usage: python benchmarks/gflownet.py [--part enumerable|torchgfn|seeds|process|torsions12|all] [--rounds 3]
       [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import CACHE, RESULTS, write_results

from boltzmatch.gflownet import train_gflownet
from boltzmatch.utils.atomic import atomic_write_text
from boltzmatch.utils.table import format_table

CASES = [("hypergrid", {"ndim": 2, "height": 8}, 160_000),
         ("torsions", {"bins": 36, "temperature": 300.0, "calculator": "openmm"}, 160_000)]
TETRIS = {"width": 4, "height": 4, "sharpness": 5.0, "pieces": "IOJLT"}
TORCHGFN_CASES = [(2, 8, "tb"), (2, 16, "tb"), (4, 8, "tb"), (4, 16, "tb"), (2, 8, "fm"), (4, 8, "fm")]
# torchgfn's asserted targets for these settings, as quoted in issue 14
TORCHGFN_TARGETS = {(2, 8, "tb"): 0.012, (2, 16, "tb"): 0.052, (4, 8, "tb"): 0.25, (4, 16, "tb"): 0.66,
                    (2, 8, "fm"): 0.047, (4, 8, "fm"): 0.49}
PEER = Path(__file__).resolve().parent / ".peers" / "torchgfn" / "bin" / "python"
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "torchgfn_hypergrid.py"


def install_torchgfn_peer() -> None:
    """torchgfn 2.4.1 with torch 2.13 CPU and numpy < 2 in its own virtual environment."""
    if PEER.exists():
        return
    venv = PEER.parents[1]
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "torch==2.13.0", "numpy<2", "torchgfn==2.4.1"], check=True)


def reference_md_phi_psi():
    """φ/ψ (degrees, (n, 2)) of the cached OpenMM alanine-dipeptide MD at 300 K (made by
    benchmarks/generative.py), or None when it is not there."""
    path = CACHE / "ala300_seed1.xyz"
    if not path.exists():
        return None
    import numpy as np
    from ase.io import read

    from boltzmatch.data.geometry import ramachandran

    return np.degrees(ramachandran(read(path, ":")))


def torsion_md_jsd(run_dir: Path, md, bins: int) -> dict:
    """JSD (nats) against the MD's φ/ψ histogram on the grid's bins of: the GFlowNet's 10,000
    samples, and the grid's exact Boltzmann distribution (the rigid-rotation target itself)."""
    import numpy as np

    from boltzmatch.analysis.metrics import jensen_shannon
    from boltzmatch.gflownet.sampler import sample_trajectories
    from boltzmatch.gflownet.train import load_gflownet

    env, model, _ = load_gflownet(run_dir)
    sampled = sample_trajectories(env, model, 10_000, torch.Generator().manual_seed(0)).terminal.numpy()
    ours = np.bincount(sampled[:, 0] * bins + sampled[:, 1], minlength=bins * bins)
    edges = np.linspace(-180.0, 180.0, bins + 1)
    md_hist = np.histogram2d(md[:, 0], md[:, 1], bins=[edges, edges])[0]
    log_r = env.grid(env.log_reward(env.all_states()))  # (bins, bins), φ-major as the samples' codes
    boltzmann = np.exp(log_r - log_r.max())
    return {"jsd_gflownet_vs_md": jensen_shannon(ours, md_hist),
            "jsd_grid_boltzmann_vs_md": jensen_shannon(boltzmann, md_hist)}


def tetris_modes(run_dir: Path, n_samples: int = 10_000) -> dict:
    """Modes = terminal boards at most one piece (4 cells) short of the fullest terminal board."""
    from boltzmatch.gflownet.sampler import sample_trajectories
    from boltzmatch.gflownet.train import load_gflownet

    env, model, _ = load_gflownet(run_dir)
    states = env.all_states()
    terminal = env.forward_mask(states)[:, env.exit_action]
    filled = states.flatten(1).sum(1)
    best = int(filled[terminal].max())
    modes = set(env.index(states[terminal & (filled >= best - 4)]).tolist())
    sampled = sample_trajectories(env, model, n_samples, torch.Generator().manual_seed(0)).terminal
    seen = set(env.index(sampled).tolist())
    return {"modes": len(modes), "modes_found": len(modes & seen), "terminal_boards": int(terminal.sum())}


def enumerable() -> None:
    rows, results = [], {}
    md = reference_md_phi_psi()
    cases = [*CASES, ("tetris", TETRIS, 160_000)]
    for env, options, trajectories in cases:
        label = f"{env} " + ",".join(f"{k}={v}" for k, v in options.items() if k not in ("energy", "calculator"))
        losses = ("tb", "db", "subtb", "fm") if env != "tetris" else ("tb", "subtb")
        for loss in losses:
            for epsilon in (0.0, 0.1):
                out = CACHE / "gflownet" / f"{env}_{'_'.join(map(str, options.values()))}_{loss}_{epsilon}"
                if out.exists():
                    shutil.rmtree(out)
                summary = train_gflownet(env, out=out, env_options=options, loss=loss, batch_size=64,
                                         n_trajectories=trajectories, epsilon=epsilon, eval_every=250, progress=True)
                extra = ""
                if env == "torsions" and md is not None:
                    summary.update(torsion_md_jsd(out, md, options["bins"]))
                    extra = (f"JSD vs MD {summary['jsd_gflownet_vs_md']:.3f} "
                             f"(grid's own {summary['jsd_grid_boltzmann_vs_md']:.3f})")
                if env == "tetris":
                    summary.update(tetris_modes(out))
                    extra = f"modes found {summary['modes_found']}/{summary['modes']}"
                results[f"{label} {loss} ε={epsilon}"] = summary
                rows.append([label, loss, epsilon, summary["l1_exact"], summary["tv_exact"], summary["l1_empirical"],
                             summary["jsd_exact"], summary["log_z"], summary["log_z_true"], summary["wall_seconds"],
                             extra])
    print(write_results("gflownet", results, rows, ["target", "loss", "ε", "L1 exact", "TV exact",
                                                      "L1 empirical (10k)", "JSD", "log Z", "log Z true", "wall (s)",
                                                      "also"]))


def ours(ndim: int, height: int, loss: str, seed: int = 1) -> dict:
    from boltzmatch.gflownet.evaluate import evaluate_exact, exact_distributions, sampling_floor_l1
    from boltzmatch.gflownet.train import load_gflownet

    with tempfile.TemporaryDirectory() as tmp:
        summary = train_gflownet("hypergrid", out=tmp, env_options={"ndim": ndim, "height": height}, loss=loss,
                                 batch_size=128, n_trajectories=32_000, lr=1e-3, lr_log_z=0.1, hidden=[256, 256],
                                 backward="learned", seed=seed, eval_every=10**9, progress=False)
        env, model, _ = load_gflownet(tmp)
        distributions = exact_distributions(env, model)
        exact = evaluate_exact(env, model, loss, n_samples=200_000, seed=1, distributions=distributions)
    floors = [sampling_floor_l1(distributions[1], 200_000, draw_seed) for draw_seed in range(1, 11)]
    return {"wall_seconds": summary["wall_seconds"], "l1_empirical": exact["l1_empirical"],
            "l1_exact": exact["l1_exact"], "tv_exact": exact["tv_exact"], "log_z": exact["log_z"],
            "log_z_true": exact["log_z_true"], "l1_floor_mean": statistics.mean(floors),
            "l1_floor_sd": statistics.stdev(floors)}


def theirs(ndim: int, height: int, loss: str, seed: int = 1) -> dict:
    done = subprocess.run([str(PEER), str(PEER_SCRIPT), "--ndim", str(ndim), "--height", str(height), "--loss", loss,
                           "--seed", str(seed)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


TORCHGFN_HEADER = ["hypergrid", "torchgfn target L1", "L1 torchgfn (200k)", "L1 boltzmatch (200k)",
                   "L1 of 200k exact samples", "TV exact boltzmatch", "wall torchgfn (s)", "wall boltzmatch (s)",
                   "ratio of medians", "ratio per round: median (min–max)"]


def torchgfn_row(key: str, entry: dict) -> list:
    """One table row from a case's stored results (``--part torchgfn`` writes them; the table can be
    rebuilt from the JSON with ``--table-only``)."""
    runs = entry["runs"]
    wall = {name: statistics.median(r["wall_seconds"] for r in runs[name]) for name in runs}
    l1 = {name: statistics.median(r["l1_empirical"] for r in runs[name]) for name in runs}
    ratios = [a["wall_seconds"] / b["wall_seconds"] for a, b in zip(runs["boltzmatch"], runs["torchgfn"])]
    floor = runs["boltzmatch"][0]
    return [key, entry["torchgfn_target"], l1["torchgfn"], l1["boltzmatch"],
            f"{floor['l1_floor_mean']:.4f} ± {floor['l1_floor_sd']:.4f}",
            statistics.median(r["tv_exact"] for r in runs["boltzmatch"]), wall["torchgfn"], wall["boltzmatch"],
            wall["boltzmatch"] / wall["torchgfn"],
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"]


def side_by_side(rounds: int) -> None:
    install_torchgfn_peer()
    rows, results = [], {}
    for ndim, height, loss in TORCHGFN_CASES:
        runs = {"boltzmatch": [], "torchgfn": []}
        for _ in range(rounds):  # alternate, so both see the same machine
            runs["torchgfn"].append(theirs(ndim, height, loss))
            runs["boltzmatch"].append(ours(ndim, height, loss))
        wall = {name: statistics.median(r["wall_seconds"] for r in runs[name]) for name in runs}
        l1 = {name: statistics.median(r["l1_empirical"] for r in runs[name]) for name in runs}
        key = f"{height}^{ndim} {loss}"
        results[key] = {"runs": runs, "median_wall_seconds": wall, "median_l1_empirical": l1,
                        "wall_ratio": wall["boltzmatch"] / wall["torchgfn"],
                        "torchgfn_target": TORCHGFN_TARGETS[(ndim, height, loss)]}
        rows.append(torchgfn_row(key, results[key]))
        print(rows[-1], flush=True)
    print(write_results("gflownet_torchgfn", results, rows, TORCHGFN_HEADER))


def torchgfn_table_from_json() -> None:
    """Rewrite gflownet_torchgfn.md from the stored JSON (after a change of the table only)."""
    stored = json.loads((RESULTS / "gflownet_torchgfn.json").read_text())
    results = {key: entry for key, entry in stored.items() if key != "machine"}
    rows = [torchgfn_row(key, entry) for key, entry in results.items()]
    table = format_table(rows, header=TORCHGFN_HEADER, title="gflownet_torchgfn")
    atomic_write_text(RESULTS / "gflownet_torchgfn.md", table + "\n")
    print(table)


def across_seeds(seeds: int) -> None:
    """The empirical L1 of both at seeds 1 … ``seeds`` on the 4-dimensional grids (TB), where one seed's
    numbers of the two sides lie within each other's seed-to-seed spread."""
    install_torchgfn_peer()
    rows, results = [], {}
    for ndim, height, loss in [(4, 8, "tb"), (4, 16, "tb")]:
        l1 = {"boltzmatch": [], "torchgfn": []}
        for seed in range(1, seeds + 1):
            l1["torchgfn"].append(theirs(ndim, height, loss, seed)["l1_empirical"])
            l1["boltzmatch"].append(ours(ndim, height, loss, seed)["l1_empirical"])
        key = f"{height}^{ndim} {loss}"
        results[key] = {"seeds": list(range(1, seeds + 1)), "l1_empirical": l1}
        rows.append([key, seeds, *(f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" for v in l1.values()),
                     sum(a < b for a, b in zip(l1["boltzmatch"], l1["torchgfn"]))])
        print(rows[-1], flush=True)
    print(write_results("gflownet_torchgfn_seeds", results, rows,
                        ["hypergrid", "seeds", "L1 boltzmatch (200k), mean ± sd", "L1 torchgfn (200k), mean ± sd",
                         "seeds where boltzmatch is lower"]))


TB_SETTINGS = ["--loss", "tb", "--batch-size", "128", "--lr", "1e-3", "--lr-log-z", "0.1", "--hidden", "256",
               "256", "--backward", "learned", "--seed", "1"]


def our_process(ndim: int, height: int, n_trajectories: int = 32_000) -> dict:
    """``boltzmatch gflownet train`` as a user runs it, timed as a whole process (start-up, training, its final
    exact evaluation); the run is judged afterwards, untimed."""
    import time

    from boltzmatch.gflownet.evaluate import evaluate_exact
    from boltzmatch.gflownet.train import load_gflownet

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "boltzmatch", "gflownet", "train", "--env", "hypergrid", "--ndim",
                        str(ndim), "--height", str(height), "--n-trajectories", str(n_trajectories),
                        "--eval-every", str(10**9), *TB_SETTINGS, "--out", f"{tmp}/run", "--quiet"],
                       check=True, capture_output=True)
        wall = time.perf_counter() - start
        env, model, _ = load_gflownet(f"{tmp}/run")
        exact = evaluate_exact(env, model, "tb")
    return {"process_seconds": wall, "l1_exact": exact["l1_exact"], "log_z": exact["log_z"],
            "log_z_true": exact["log_z_true"]}


def their_process(ndim: int, height: int) -> dict:
    """torchgfn's script as a whole process, less its 200,000-sample validation (which ours does not do)."""
    import time

    start = time.perf_counter()
    result = theirs(ndim, height, "tb")
    result["process_seconds"] = time.perf_counter() - start - result["validation_seconds"]
    return result


def whole_process(rounds: int) -> None:
    """Issue 38: whole-process wall time of TB at torchgfn's settings, round robin, ratios per round;
    and 8⁴ trained to exact L1 ≤ 0.1 at larger budgets (stated in the table)."""
    install_torchgfn_peer()
    rows, results = [], {}
    for ndim, height in ((2, 8), (4, 8)):
        runs = {"boltzmatch": [], "torchgfn": []}
        for _ in range(rounds):
            runs["torchgfn"].append(their_process(ndim, height))
            runs["boltzmatch"].append(our_process(ndim, height))
        ratios = [a["process_seconds"] / b["process_seconds"] for a, b in zip(runs["boltzmatch"], runs["torchgfn"])]
        key = f"{height}^{ndim} tb"
        results[key] = {"runs": runs, "ratio_median": statistics.median(ratios)}
        rows.append([key, 32_000, statistics.median(r["process_seconds"] for r in runs["torchgfn"]),
                     statistics.median(r["process_seconds"] for r in runs["boltzmatch"]),
                     f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})",
                     statistics.median(r["l1_empirical"] for r in runs["torchgfn"]),
                     statistics.median(r["l1_exact"] for r in runs["boltzmatch"])])
        print(rows[-1], flush=True)
    for budget in (128_000, 320_000):  # how many trajectories 8⁴ needs to reach exact L1 ≤ 0.1
        run = our_process(4, 8, budget)
        results[f"8^4 tb {budget}"] = run
        rows.append(["8^4 tb (budget)", budget, None, run["process_seconds"], None, None, run["l1_exact"]])
        print(rows[-1], flush=True)
    print(write_results("gflownet_process", results, rows,
                        ["hypergrid", "trajectories", "process torchgfn (s)", "process boltzmatch (s)",
                         "ratio per round: median (min–max)", "L1 torchgfn (200k samples)",
                         "exact L1 boltzmatch"]))


def torsions12(seeds: int = 3) -> None:
    """Every loss with its defaults on alanine dipeptide's φ/ψ at 12 × 12 bins (OpenMM, 300 K), 32,000
    trajectories in batches of 16, seeds 0 … ``seeds`` − 1: exact L1 and log Z; and FM at ε 0 beside its
    default ε 0.1 (issue 38: FM ≤ 0.1 like TB on the same budget)."""
    options = {"bins": 12, "temperature": 300.0, "calculator": "openmm"}
    cases = [("tb", None), ("db", None), ("subtb", None), ("fm", None), ("fm", 0.0)]
    results, rows = {"settings": {**options, "n_trajectories": 32_000, "batch_size": 16, "seeds": seeds}}, []
    for loss, epsilon in cases:
        runs = []
        for seed in range(seeds):
            out = CACHE / "gflownet" / f"torsions12_{loss}_{epsilon}_{seed}"
            summary = train_gflownet("torsions", out=out, env_options=options, loss=loss, n_trajectories=32_000,
                                     batch_size=16, epsilon=epsilon, seed=seed, eval_every=500, progress=False,
                                     overwrite=True)
            runs.append({k: summary[k] for k in ("l1_exact", "log_z", "log_z_true", "wall_seconds")})
        name = f"{loss} (ε {'default' if epsilon is None else epsilon})"
        results[name] = runs
        l1 = [r["l1_exact"] for r in runs]
        rows.append([name, statistics.median(l1), min(l1), max(l1), statistics.median([r["log_z"] for r in runs]),
                     runs[0]["log_z_true"], statistics.median([r["wall_seconds"] for r in runs])])
        print(rows[-1], flush=True)
    print(write_results("gflownet_torsions12", results, rows,
                        ["loss", "exact L1 (median)", "min", "max", "log Z (median)", "log Z true", "wall (s)"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("enumerable", "torchgfn", "seeds", "process", "torsions12", "all"),
                        default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the 'seeds' part")
    parser.add_argument("--table-only", action="store_true",
                        help="rewrite the torchgfn table from benchmarks/results/gflownet_torchgfn.json and stop")
    args = parser.parse_args()
    if args.table_only:
        torchgfn_table_from_json()
        return
    if args.part in ("torchgfn", "all"):
        side_by_side(args.rounds)
    if args.part in ("seeds", "all"):
        across_seeds(args.seeds)
    if args.part in ("enumerable", "all"):
        enumerable()
    if args.part in ("process", "all"):
        whole_process(args.rounds)
    if args.part in ("torsions12", "all"):
        torsions12(args.rounds)


if __name__ == "__main__":
    main()
