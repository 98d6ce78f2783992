# %% [markdown]
# # Fit a potential, then fine-tune it towards the Boltzmann distribution
#
# The workflow most users start with: make reference data with a real method (GFN2-xTB through
# tblite), train SchNet on energies and forces, fine-tune it with the Fisher divergence (with
# reference forces, β²·force matching at the data's temperature), and judge both on a trajectory
# seeded separately from the training one.
#
# Every step is one `boltzmatch` command; this page runs them through the CLI's entry point so you
# can copy them into a shell. Sizes here are small so the page builds in seconds; the comments say
# what to use for real work.

# %%
import shlex

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    """Run ``boltzmatch COMMAND`` as a shell would, failing loudly if it fails."""
    print(f"$ boltzmatch {command}")
    status = main(shlex.split(command))
    assert status == 0, f"boltzmatch {command} exited with {status}"


# %% [markdown]
# ## Reference data
#
# 150 frames of ethanol at 500 K for training and 100 from a separately seeded trajectory for
# judging (real work: 1,000 or more, `--time 5`). Each frame carries GFN2-xTB energy (eV) and
# forces (eV/Å) and the temperature it was sampled at.

# %%
boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 0.75 --interval 10 "
           "--equilibration 200 --seed 1 --out ethanol-train.xyz --quiet")
boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 0.5 --interval 10 "
           "--equilibration 200 --seed 2 --out ethanol-test.xyz --quiet")
boltzmatch("info ethanol-train.xyz")

# %% [markdown]
# ## Train on energies and forces
#
# `--max-minutes` stops training on time (real work: leave it out and let early stopping decide).
# The summary table at the end gives the held-out errors of the run's own test split.

# %%
boltzmatch("train ethanol-train.xyz --model schnet --objective energy-forces --epochs 200 --batch-size 16 "
           "--max-minutes 0.3 --seed 0 --out runs/schnet-mse --quiet")

# %% [markdown]
# ## Fine-tune with the Fisher divergence
#
# The Fisher divergence between the data's Boltzmann distribution and the model's is
# ½ E‖β(F_ref − F_θ)‖²: with reference forces it is force matching weighted by β² (1/eV²), so the
# temperature matters and is read from the frames.

# %%
boltzmatch("finetune runs/schnet-mse --data ethanol-train.xyz --objective fisher --epochs 100 "
           "--max-minutes 0.2 --out runs/schnet-fisher --quiet")

# %% [markdown]
# ## Judge on held-out data, with MD
#
# `compare` evaluates every run on the held-out trajectory and, with `--simulate`, runs the same
# Langevin MD (same seeds) with each model: time to collapse (a bond deviating by more than 0.5 Å),
# h(r) and bond-length distributions against the reference. Here 8 replicas × 0.5 ps; the demo
# uses 16 × 20 ps.

# %%
boltzmatch("compare runs/schnet-mse runs/schnet-fisher --test ethanol-test.xyz --names mse fisher "
           "--simulate --replicas 8 --time 0.5 --out report --quiet")

# %% [markdown]
# `report/report.md` holds the same table and the figures above. With minutes of training instead
# of seconds, the Fisher-fine-tuned column shows lower force errors; the demo's report
# (`boltzmatch demo`) is the full-size version of this page.
