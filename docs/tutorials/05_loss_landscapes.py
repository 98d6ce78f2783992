# %% [markdown]
# # Loss landscapes: what the Fisher objective looks like around a model
#
# A loss landscape evaluates one objective on a fixed set of frames while the model's parameters
# move along chosen directions: θ(a, b) = θ₀ + a·d₁ + b·d₂. `boltzmatch landscape` offers three kinds
# of directions:
#
# - `random` (the default): two random directions, filter-normalised as Li et al. (2018) do, so that
#   a step of 1 changes every filter by its own size; contour, surface and slice plots.
# - `params:NAME[i],NAME[j]`: two named parameters, in their own units.
# - `line:OTHER_RUN`: the straight line from this model to another one with the same architecture
#   (α = 0 is this model, α = 1 the other).
#
# It also reports a *sharpness*: the mean loss increase under random relative perturbations of size
# ε (0.05 by default), a number that says how narrow the minimum is.
#
# Here: SchNet trained briefly on energies and forces, then fine-tuned with the Fisher divergence,
# and the Fisher loss landscape around both and along the line between them.

# %%
import json
import shlex

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 0.75 --interval 10 --equilibration 200 "
           "--seed 1 --out ethanol-train.xyz --quiet")
boltzmatch("train ethanol-train.xyz --model schnet --objective energy-forces --epochs 200 --batch-size 16 "
           "--max-minutes 0.2 --seed 0 --out runs/schnet-mse --quiet")
boltzmatch("finetune runs/schnet-mse --data ethanol-train.xyz --objective fisher --temperature 500 --epochs 200 "
           "--batch-size 16 --max-minutes 0.2 --out runs/schnet-fisher --quiet")

# %% [markdown]
# ## Around each model, in two random directions
#
# A 9 × 9 grid over 40 frames (real work: the default 21 × 21 over 200 frames; `--vectorize`
# evaluates chunks of grid points at once with `torch.func.vmap`). The loss is the Fisher
# divergence at the data's temperature, in its natural unit (1/Å² per atom coordinate). The same
# seed gives both models the same random directions.

# %%
for name in ("schnet-mse", "schnet-fisher"):
    boltzmatch(f"landscape runs/{name} --data ethanol-train.xyz --objective fisher --grid 9 --max-frames 40 "
               f"--seed 0 --out landscapes/{name} --quiet")

# %% [markdown]
# Each folder holds `landscape.npz` (the grid and the losses), `landscape.json` (the numbers) and
# three plots: the contour (colour on a log scale: a span of 1 in filter-normalised units moves
# every filter by its own size, far enough to raise the loss by orders of magnitude), the surface,
# and slices through the model along each direction. The numbers side by side:

# %%
for name in ("schnet-mse", "schnet-fisher"):
    result = json.loads(open(f"landscapes/{name}/landscape.json").read())
    print(f"{name:>14}: Fisher loss at the model {result['loss_at_model']:10.1f}, "
          f"sharpness (ε = {result['sharpness_epsilon']}) {result['sharpness']:10.1f} "
          f"± {result['sharpness_std']:.1f}")

# %% [markdown]
# ## Along the line between them
#
# `line:` puts the energy+force model at α = 0 and the fine-tuned one at α = 1 and extends the line
# by `--span` on both sides. Evaluating the energy+force loss along the same line as well shows
# whether the fine-tuning traded one objective for the other.

# %%
for objective in ("fisher", "energy-forces"):
    boltzmatch(f"landscape runs/schnet-mse --data ethanol-train.xyz --objective {objective} "
               f"--directions line:runs/schnet-fisher --span 0.5 --grid 21 --max-frames 40 "
               f"--out landscapes/line-{objective} --quiet")

# %% [markdown]
# Which point along the line is lowest for each objective. A minimum beyond α = 1 means the
# fine-tuning stopped before the bottom of its valley (here it ran for at most 0.2 minutes); one between 0
# and 1 for the energy+force loss would mean Fisher fine-tuning gave up some of it.

# %%
import numpy as np  # noqa: E402

for objective in ("fisher", "energy-forces"):
    grid = np.load(f"landscapes/line-{objective}/landscape.npz")
    alpha, loss = grid["x"], grid["loss"]
    print(f"{objective:>14}: lowest at α = {alpha[np.argmin(loss)]:+.2f}; "
          f"α = 0: {loss[np.argmin(np.abs(alpha))]:.4g}, α = 1: {loss[np.argmin(np.abs(alpha - 1))]:.4g}")

# %% [markdown]
# `boltzmatch compare RUN ... --test FRAMES --landscape` adds each model's landscape and
# sharpness to a comparison report; the desktop app's Landscape pane draws the same grids.
