# %% [markdown]
# # Generative models: EBM, diffusion, GAN and VAE side by side
#
# An energy model defines a density p(x) ∝ exp(−E(x)); so does every generative model, explicitly
# (EBM: the energy itself; VAE and diffusion: a likelihood bound or an exact ODE likelihood) or only
# through its samples (GAN). `boltzmatch generative` trains the four families on the same data and
# judges them the same way, each metric beside its *floor*: the value the same metric gives between
# two disjoint halves of the held-out data, which is what "as good as the data itself" looks like.
#
# - `ebm`: an energy network trained by contrastive divergence with SGLD chains and a replay buffer
#   (Du & Mordatch 2019); `jem` adds a classifier head (Grathwohl et al. 2020) on labelled data.
# - `diffusion`: a score network trained by denoising score matching over noise levels (Song et al.
#   2021, VP or VE SDE); sampled by Euler–Maruyama, the probability-flow ODE or annealed Langevin.
# - `gan`, `vae`: the usual baselines.
#
# The same commands take `--data digits` (sklearn's 8×8 digits) or a structure file of molecules
# (ebm and diffusion: samples are written as extxyz and judged by MD-style metrics). Here: the 2-D
# mixture of eight Gaussians, where a picture says everything, with budgets of seconds
# (`benchmarks/generative.py` trains them to convergence and records how close each gets).

# %%
import json
import shlex

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


for family, epochs in {"diffusion": 40, "gan": 30, "vae": 30}.items():  # full defaults: 190, 64, 64 epochs
    boltzmatch(f"generative train {family} --data 8gaussians --epochs {epochs} --seed 0 --out runs/{family} --quiet")

# %% [markdown]
# The EBM's chains on 2-D data are Metropolis-adjusted Langevin (MALA) chains kept in a replay
# buffer: each step's Metropolis test makes them sample exp(−E) exactly, and the step size adapts
# to 57 % acceptance, so no step size or noise needs tuning to the data's scale. Its full default
# (8,000 updates of 60 chain steps) takes minutes; here six epochs with 20 steps and a smaller net:

# %%
boltzmatch("generative train ebm --data 8gaussians --epochs 6 --option hidden=[128,128] "
           "--option steps=20 --seed 0 --out runs/ebm --quiet")

# %% [markdown]
# Each run folder holds the model, `metrics.csv` (the training loss per epoch) and a checkpoint:
# `--resume RUN` continues a killed run. Family options go in as `--option KEY=VALUE`, e.g.
# `--option sde=ve` or `--option hidden=[128,128]`.
#
# ## Compare
#
# `generative compare` draws 2,000 samples from each run and computes, against held-out data:
# MMD² with its permutation-test p-value, the 2-Wasserstein distance W2, and where the family has
# one, the negative log-likelihood (nats per point; the floor column gives a kernel density
# estimate of the training data for scale). It writes `report.md`, `compare.json` and the density
# of every model's samples beside the data.

# %%
boltzmatch("generative compare runs/ebm runs/diffusion runs/gan runs/vae --out report --seed 0 --quiet")

# %% [markdown]
# How to read it: MMD² close to its floor with p > 0.05 means the two-sample test cannot tell the
# samples from the data; W2 within about 1.5× of its floor is as close as this sample size can show.
# With budgets of seconds the models have not got there yet; the numbers in `compare.json`:

# %%
result = json.loads(open("report/compare.json").read())
floor = result["floor"]["8gaussians"]
print(f"{'':>10}  {'MMD²':>9}  {'W2':>6}  {'W2 / floor':>10}")
for name, m in result["models"].items():
    print(f"{name.removeprefix('runs/'):>10}  {m['mmd2']:9.4f}  {m['w2']:6.3f}  {m['w2'] / floor['w2']:10.2f}")
print(f"{'floor':>10}  {floor['mmd2']:9.4f}  {floor['w2']:6.3f}")

# %% [markdown]
# ## Sample
#
# `generative sample` draws from any run and plots 2-D samples beside the file; diffusion offers
# three samplers (`--sampler ode` is deterministic for a seed and the one the likelihood uses).

# %%
boltzmatch("generative sample runs/diffusion -n 1000 --sampler ode --steps 200 --seed 1 --out diffusion-ode.npy")
