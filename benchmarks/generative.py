"""Generative models on digits, 2-D toys and alanine dipeptide, each metric beside its floor (issue 13).

- digits: EBM, JEM, diffusion (VP), GAN and VAE with every default, and JEM's network trained as a
  plain classifier; one `generative compare` table (MMD² to held-out digits next to the floor, JEM's
  test accuracy next to the classifier's, the judge's confidence in generated digits), sample grids.
- toys (moons, 8gaussians, swissroll, checkerboard): the EBM, diffusion (VP), GAN and VAE, every
  default; W2 and the multi-scale MMD permutation test against held-out data next to the floor (mean ±
  sd over five halvings), the modes of 8gaussians covered and how evenly. Goals: diffusion W2 ≤ 1.5 ×
  floor and MMD p > 0.05; the EBM the same on ≥ 3 of 4 toys and every mode of 8gaussians within ±30 %
  of an equal share.
- molecules: alanine dipeptide in vacuum (Amber via OpenMM, 300 K, 1 fs Langevin): 2,000 training
  frames over 500 ps (seed 1) and 2,000 held-out frames from a separately seeded run (seed 2).
  SchNet learns from positions alone by cd, dsm and the diffusion model (noise-conditional SchNet,
  its σ_min energy as force field), dsm with the bonded prior, and both dsm models fine-tuned by cd
  (¾ of the budget; CD keeps its last epoch);
  force Pearson r against the Amber forces on the held-out frames;
  64 Langevin replicas started from held-out frames; φ/ψ JSD (36×36) of their frames against the
  held-out trajectory next to the floor (two halves of it, the same number of frames), and the same
  against a third trajectory (seed 3) that took part in no choice.
  Goal: r ≥ 0.9 and JSD ≤ 2 × floor for the best positions-only model.

Usage: python benchmarks/generative.py [digits] [toys] [molecules] [--md-ps PS] [--minutes MIN] [--toys NAME ...]
Writes benchmarks/results/generative_{digits,toys,molecules}.{json,md} and PNGs under
benchmarks/results/generative/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from common import CACHE, RESULTS, write_results

import boltzmatch
from boltzmatch.generative import train_generative
from boltzmatch.generative.compare import compare_generative, format_generative_report

WORK = CACHE / "generative"
FIGURES = RESULTS / "generative"
TOYS = ("moons", "8gaussians", "swissroll", "checkerboard")


def _train(family: str, data: str, name: str, **kwargs) -> Path:
    run = WORK / name
    if not (run / "summary.txt").exists():
        if run.exists():
            shutil.rmtree(run)
        train_generative(family, data, out=run, progress=True, **kwargs)
    return run


def _figures(report: Path, prefix: str) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for png in report.glob("*.png"):
        shutil.copy(png, FIGURES / f"{prefix}_{png.name}")


def digits() -> None:
    runs = [_train(f, "digits", f"digits_{f}") for f in ("ebm", "jem", "classifier", "diffusion", "gan", "vae")]
    report = WORK / "digits_report"
    result = compare_generative(runs, out=report)
    _figures(report, "digits")
    models = result["models"]
    jem, plain = models["digits_jem"]["accuracy"], models["digits_classifier"]["accuracy"]
    result["goals"] = {"jem_accuracy": jem, "classifier_accuracy": plain,
                       "jem_at_least_95": jem >= 0.95, "jem_within_2_points": plain - jem <= 0.02}
    floor = result["floor"]["digits"]
    rows = [[name.removeprefix("digits_"), m.get("mmd2"), m.get("mmd_p"), m.get("nll"), m.get("accuracy"),
             m.get("sample_accuracy"), m.get("sample_confidence")] for name, m in models.items()]
    rows.append(["floor (held-out halves)", floor["mmd2"], floor["mmd_p"], floor.get("nll_kde"),
                 None, floor["sample_accuracy"], floor["sample_confidence"]])
    print(write_results("generative_digits", result, rows,
                        ["model", "MMD²", "MMD p", "NLL (nats)", "test acc.", "cond. sample acc.",
                         "sample confidence"]))
    print(format_generative_report(result))


#: the entropy of 8gaussians in data units (eight well-separated Gaussians, σ 0.5/1.414): the NLL of the exact density
EIGHT_GAUSSIANS_ENTROPY = float(np.log(8) + np.log(2 * np.pi * np.e * (0.5 / 1.414) ** 2))


def toys(selected: list[str]) -> None:
    rows, all_results = [], {}
    for data in selected:
        runs = [_train(f, data, f"{data}_{f}") for f in ("ebm", "diffusion", "gan", "vae")]
        report = WORK / f"{data}_report"
        result = compare_generative(runs, out=report)
        _figures(report, data)
        floor = result["floor"][data]
        for m in result["models"].values():
            rows.append([data, m["family"], f"{m['w2']:.3f} ± {m['w2_sd']:.3f}",
                         f"{floor['w2']:.3f} ± {floor['w2_sd']:.3f}", m["w2"] / floor["w2"], m["mmd2"], m["mmd_p"],
                         floor["mmd_p"], m.get("modes_covered"), m.get("max_share_deviation"), m.get("nll")])
        goals = {}
        for family in ("ebm", "diffusion"):
            m = result["models"][f"{data}_{family}"]
            goals[family] = {"w2_ratio": m["w2"] / floor["w2"], "w2_within_1.5": m["w2"] <= 1.5 * floor["w2"],
                             "mmd_not_rejected": m["mmd_p"] > 0.05}
            if data == "8gaussians":
                goals[family]["every_mode_within_30_percent"] = (m["modes_covered"] == 8
                                                                 and m["max_share_deviation"] <= 0.3)
        result["goals"] = goals
        if data == "8gaussians":
            result["nll_exact"] = EIGHT_GAUSSIANS_ENTROPY
        all_results[data] = result
    if set(selected) != set(TOYS):
        print("judged", ", ".join(selected), "(the table is written when every toy is selected)")
        return
    met = [d for d in TOYS if all(all_results[d]["goals"]["ebm"][k] for k in ("w2_within_1.5", "mmd_not_rejected"))]
    all_results["ebm_goal"] = {"toys_meeting_w2_and_mmd": met, "at_least_three": len(met) >= 3,
                               "every_mode_within_30_percent": all_results["8gaussians"]["goals"]["ebm"][
                                   "every_mode_within_30_percent"]}
    print(write_results("generative_toys", all_results, rows,
                        ["data", "model", "W2 (mean ± sd)", "W2 floor (mean ± sd)", "ratio", "MMD² (multi-scale)",
                         "MMD p", "floor MMD p", "modes covered", "largest mode share off uniform", "NLL (nats)"]))
    print(f"8gaussians: NLL of the exact density (its entropy) {EIGHT_GAUSSIANS_ENTROPY:.3f} nats;",
          "EBM meets W2 ≤ 1.5 × floor and MMD p > 0.05 on", ", ".join(met) or "none")


def molecules(md_ps: float, minutes: float) -> None:
    from ase.io import read

    from boltzmatch.analysis.compare import sample_metrics
    from boltzmatch.analysis.evaluate import evaluate
    from boltzmatch.analysis.metrics import histogram2d_jsd, valid_structure_fraction, with_floor
    from boltzmatch.data.geometry import ramachandran
    from boltzmatch.generative.molecular import sample_molecules, train_molecular_diffusion

    train = CACHE / "ala300_seed1.xyz"
    test = CACHE / "ala300_seed2.xyz"
    confirm = CACHE / "ala300_seed3.xyz"  # used in no choice: the goal is confirmed against it
    if not all(path.exists() for path in (train, test, confirm)):
        from boltzmatch.data import generate

        for path, seed in ((train, 1), (test, 2), (confirm, 3)):
            if not path.exists():
                generate("alanine-dipeptide", out=path, calculator="openmm", temperature=300, time=500.0,
                         interval=250, timestep=1.0, equilibration=5000, seed=seed, progress=True)
    common = dict(model="schnet", config={"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20},
                  temperature=300.0, epochs=1000, batch_size=32, lr=1e-3, max_minutes=minutes, progress=True)
    runs = {}
    for name in ("dsm", "cd", "diffusion", "dsm+cd", "dsm+prior", "dsm+prior+cd"):
        run = WORK / f"ala_{name}"
        if not (run / "summary.txt").exists():
            if name == "dsm":
                boltzmatch.train(train, out=run, objective="dsm", **common)
            elif name == "dsm+prior":  # bonds, angles, impropers, torsions and walls fitted to the same frames
                boltzmatch.train(train, out=run, objective="dsm", prior="bonded", **common)
            elif name == "cd":
                boltzmatch.train(train, out=run, objective="cd", cd_options={"steps": 5, "buffer": 256}, **common)
            elif name in ("dsm+cd", "dsm+prior+cd"):  # a dsm model fine-tuned by cd: its MD samples find
                # the model's own holes and basins; long-lived chains (20 steps of 1 fs per visit, 128 of them,
                # 0.5 % restarted per visit: a chain lives ~4 ps, where 5 % gave ~0.4 ps) so that the model
                # samples reach what its MD falls into after picoseconds
                boltzmatch.finetune(runs[name[:-3]], data=train, out=run, objective="cd", temperature=300.0,
                                    cd_options={"steps": 20, "timestep": 1.0, "buffer": 128, "reinit": 0.005},
                                    epochs=1000, max_minutes=minutes * 0.75, progress=True)
            else:
                train_molecular_diffusion(train, out=run, temperature=300.0, epochs=1000, max_minutes=minutes,
                                          progress=True)
        runs[name] = run
    reference = read(test, index=":")
    training = read(train, index=":")
    ref_angles = ramachandran(reference)
    confirm_angles = ramachandran(read(confirm, index=":"))
    results, rows = {}, []
    panels = {"reference (held out)": np.degrees(ref_angles)}
    for name, run in runs.items():
        metrics = evaluate(run, test)
        md_dir = WORK / f"ala_{name}_md{md_ps:g}"
        if not (md_dir / "summary.json").exists():
            if md_dir.exists():
                shutil.rmtree(md_dir)
            boltzmatch.simulate(run, test, out=md_dir, temperature=300.0, replicas=64, time=md_ps, timestep=1.0,
                                interval=20, seed=0, progress=True)
        md = json.loads((md_dir / "summary.json").read_text())
        frames = [a for p in sorted((md_dir / "trajectories").glob("replica_*.xyz")) for a in read(p, index=":")]
        angles = ramachandran(frames)
        jsd, floor, n = with_floor(histogram2d_jsd, angles, ref_angles, seed=0)
        jsd3, floor3, _ = with_floor(histogram2d_jsd, angles, confirm_angles, seed=0)
        r3 = evaluate(run, confirm)["force_pearson"]
        shape = sample_metrics(frames, reference, seed=0)
        valid = valid_structure_fraction(frames, training)  # every pair and bond within the training range ± 0.1 Å
        results[name] = {"force_pearson": metrics["force_pearson"], "force_mae_meV_A": 1000 * metrics["force_mae"],
                         "force_scale": metrics.get("force_scale"), "jsd": jsd, "jsd_floor": floor, "n": n,
                         "md_frames": len(frames), "collapsed": md.get("n_collapsed"),
                         "hr_mae": shape["hr_mae"], "bond_ks": shape["bond_ks"], "angle_ks": shape["angle_ks"],
                         "median_time_to_collapse_ps": md["median_time_to_collapse_ps"],
                         "mean_temperature": md["mean_temperature"], "valid_fraction": valid,
                         "seed3": {"force_pearson": r3, "jsd": jsd3, "jsd_floor": floor3}}
        rows.append([name, metrics["force_pearson"], 1000 * metrics["force_mae"], jsd, floor, jsd / floor,
                     shape["hr_mae"], shape["bond_ks"], 100 * valid, md["median_time_to_collapse_ps"],
                     md["mean_temperature"], r3, jsd3 / floor3])
        panels[name] = np.degrees(angles)
    # the diffusion model's own samples (annealed Langevin down its noise ladder, no MD): the set where an
    # H–H pair at 0.36 Å passed without comment before the valid column existed (issue 43)
    drawn = sample_molecules(runs["diffusion"], 512, seed=0)
    drawn_angles = ramachandran(drawn)
    jsd, floor, n = with_floor(histogram2d_jsd, drawn_angles, ref_angles, seed=0)
    shape = sample_metrics(drawn, reference, seed=0)
    valid = valid_structure_fraction(drawn, training)
    results["diffusion samples"] = {"jsd": jsd, "jsd_floor": floor, "n": n, "hr_mae": shape["hr_mae"],
                                    "bond_ks": shape["bond_ks"], "valid_fraction": valid, "samples": len(drawn)}
    rows.append(["diffusion (512 annealed samples)", "–", "–", jsd, floor, jsd / floor, shape["hr_mae"],
                 shape["bond_ks"], 100 * valid, "–", "–", "–", "–"])
    from boltzmatch.analysis import plots

    FIGURES.mkdir(parents=True, exist_ok=True)
    plots.density_panels(panels, FIGURES / "alanine_ramachandran.png", bins=36, extent=[[-180, 180], [-180, 180]],
                         labels=("φ (°)", "ψ (°)"),
                         title=f"alanine dipeptide φ/ψ (degrees): held-out reference and each model's MD, {md_ps:g} ps")
    best = max((k for k in results if "force_pearson" in results[k]), key=lambda k: results[k]["force_pearson"])

    def meets(k: str, key: str | None = None) -> bool:
        m = results[k] if key is None else results[k][key]
        return m["force_pearson"] >= 0.9 and m["jsd"] <= 2 * m["jsd_floor"]

    # the diffusion model's MD collapses (its frames are few and hot): it is judged, not eligible
    eligible = [k for k in results if results[k].get("collapsed") == 0]
    goals = {"best_by_force_r": best, "r_at_least_0.9": results[best]["force_pearson"] >= 0.9,
             "jsd_within_2x_floor": results[best]["jsd"] <= 2 * results[best]["jsd_floor"],
             "models_meeting_both": [k for k in eligible if meets(k)],
             "models_meeting_both_on_seed3": [k for k in eligible if meets(k, "seed3")]}
    print(write_results("generative_molecules", {"settings": {"md_ps": md_ps, "replicas": 64, "timestep_fs": 1.0,
                                                               "train_minutes": minutes},
                                                  "models": results, "goals": goals}, rows,
                        ["model (positions only)", "force r", "force MAE (meV/Å)", "φ/ψ JSD", "JSD floor",
                         "ratio", "h(r) MAE", "bond KS", "valid %", "median collapse (ps)", "mean T (K)",
                         "force r (seed 3)", "JSD ratio (seed 3)"]))
    print("models with r ≥ 0.9 and JSD ≤ 2 × floor, every replica intact:",
          ", ".join(goals["models_meeting_both"]) or "none", "| on the seed-3 trajectory:",
          ", ".join(goals["models_meeting_both_on_seed3"]) or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["digits", "toys", "molecules"])
    parser.add_argument("--md-ps", type=float, default=5.0, help="MD per replica for the φ/ψ JSD (ps)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per molecular model")
    parser.add_argument("--toys", nargs="+", default=list(TOYS), choices=TOYS,
                        help="toys to train and judge (the table is written when all are chosen)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        if part == "digits":
            digits()
        elif part == "toys":
            toys(args.toys)
        elif part == "molecules":
            molecules(args.md_ps, args.minutes)
        else:
            raise SystemExit(f"unknown part {part!r}: digits, toys, molecules")


if __name__ == "__main__":
    main()
