# %% [markdown]
# # Judge a model by running it: batched MD and stability
#
# Low force errors do not guarantee stable dynamics. `boltzmatch simulate` runs many replicas of
# Langevin MD with a model in one batch (one model call per step for all of them), checks every 10
# steps whether a molecule's bond graph has become one the reference never visits (a bond 0.5 Å beyond
# its reference mean, or a new one, for 50 fs), and stops replicas that collapse while the others go on.
# Here two linear descriptor potentials fitted in closed form (seconds), one by energy least squares and
# one at the optimum of the Fisher divergence, and a SchNet trained for a few seconds only: a model far
# from converged, as a first run often is.

# %%
import json
import shlex

import matplotlib.pyplot as plt
import numpy as np

from boltzmatch.cli.main import main
from boltzmatch.simulate.output import read_thermo


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 1.5 --interval 10 --equilibration 200 "
           "--seed 1 --out ethanol-train.xyz --quiet")
for objective in ("energy", "fisher"):
    boltzmatch(f"train ethanol-train.xyz --model linear --solver closed-form --objective {objective} "
               f"--temperature 500 --out runs/linear-{objective} --quiet")
boltzmatch("train ethanol-train.xyz --model schnet --objective energy-forces --max-minutes 0.1 --seed 0 "
           "--out runs/schnet-brief --quiet")
MODELS = ["linear-energy", "linear-fisher", "schnet-brief"]

# %% [markdown]
# ## Simulate
#
# 16 replicas × 2 ps at 500 K with a 0.5 fs timestep (real work: 32 or more replicas and tens to
# hundreds of ps). Starting frames are drawn from the training data with the seed; the same seed
# gives every model the same starts and the same thermostat noise.

# %%
for name in MODELS:
    boltzmatch(f"simulate runs/{name} --start ethanol-train.xyz --temperature 500 --replicas 16 "
               f"--time 2 --timestep 0.5 --seed 0 --out md-{name} --quiet")

# %% [markdown]
# Each run folder holds `summary.json` (times to collapse, reasons, mean temperature, speed and the
# share of each step spent outside the model), `thermo.csv` and one trajectory per replica.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
for name in MODELS:
    summary = json.loads(open(f"md-{name}/summary.json").read())
    ttc, collapsed = np.asarray(summary["time_to_collapse_ps"]), np.asarray(summary["collapsed"])
    t = np.linspace(0.0, summary["simulated_ps"], 400)
    left.plot(t, [1.0 - np.mean(collapsed & (ttc <= x)) for x in t], label=name)
    thermo = read_thermo(f"md-{name}/thermo.csv")
    times = np.unique(thermo["time_ps"])
    right.plot(times, [thermo["temperature_K"][thermo["time_ps"] == t].mean() for t in times], label=name)
    print(f"{name:>13}: {summary['n_collapsed']}/{summary['replicas']} collapsed, median time to collapse "
          f"{summary['median_time_to_collapse_ps']:.2f} ps, {summary['replica_steps_per_second']:.0f} replica-steps/s, "
          f"{100 * summary['timing']['outside_model_fraction']:.0f} % of a step outside the model")
left.set(xlabel="time (ps)", ylabel="fraction of replicas stable", ylim=(-0.05, 1.05), title="survival")
right.set(xlabel="time (ps)", ylabel="mean temperature (K)", title="replicas still running")
left.legend()
fig.tight_layout()
fig.savefig("survival.png", dpi=120)

# %% [markdown]
# `boltzmatch compare RUN ... --test HELD_OUT --simulate` runs the same MD for several models
# and adds h(r), bond-length and angle distributions, KS statistics and MMD against the reference
# (tutorial 1). `simulate --resume` continues a killed run from its last checkpoint; trajectories
# and `thermo.csv` are cut back to that point so nothing is duplicated.
