# %% [markdown]
# # QM9 and hyperparameter sweeps
#
# QM9 (the 130,831 characterised molecules of its 133,885, B3LYP/6-31G(2df,p)) ships inside the
# `qm9pack` wheel (the `qm9` extra), so no download is needed: `boltzmatch data qm9` writes it as an
# ASE database in SchNetPack's layout (properties under SchNetPack's names, energies in eV), which
# `train`, `sweep` and SchNetPack itself read. SchNetPack's `QM9` class needs
# `remove_uncharacterized=True` for it: with its default (False) it expects all 133,885 rows.
#
# Sweeps are written as Weights & Biases sweep YAML (`method`, `metric`, `parameters`, `run_cap`,
# `early_terminate`, `command`) and run locally by Optuna: every trial is the `command` with the
# sampled arguments, in its own run folder; the study lives in the sweep folder's SQLite file, or
# in PostgreSQL (`--storage postgresql://…`) when agents on several machines share it.

# %%
import shlex

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


boltzmatch("data qm9 --out qm9-300.db --limit 300 --seed 0 --quiet")
boltzmatch("info qm9-300.db")

# %% [markdown]
# ## One training run on U0
#
# `--energy-key` picks the property to learn (here the internal energy at 0 K, eV). Energies are
# fitted as a sum of per-element reference energies (least squares on the training split) plus what
# the network adds; 300 molecules and 0.2 minutes give a model that is far from the ~10 meV of
# published SchNet results (those use 110k molecules and days; `benchmarks/qm9_u0.py` measures
# what boltzmatch reaches on this machine).

# %%
boltzmatch("train qm9-300.db --energy-key energy_U0 --objective energy --model schnet --epochs 100 --batch-size 32 "
           "--max-minutes 0.2 --seed 0 --out runs/qm9-schnet --quiet")

# %% [markdown]
# ## A sweep
#
# Six trials of a small SchNet over learning rate (log-uniform), batch size and number of
# interaction blocks, random search, minimising the validation loss each run records. In `command`,
# `${env}` is W&B's `/usr/bin/env`, `boltzmatch` runs as `python -m boltzmatch` of the Python that
# runs the sweep, and `${args}` are the sampled parameters as `--name value` (underscores become
# dashes); each trial gets `--out trials/NNNN` and runs in the directory the sweep was started from.

# %%
sweep = """\
method: random
metric: {name: val_loss, goal: minimize}
run_cap: 6
command: ["${env}", boltzmatch, train, qm9-300.db, "${args}"]
parameters:
  energy_key: {value: energy_U0}
  objective: {value: energy}
  epochs: {value: 3}
  n_features: {value: 32}
  n_rbf: {value: 16}
  lr: {distribution: log_uniform_values, min: 0.0003, max: 0.01}
  batch_size: {values: [16, 32, 64]}
  n_interactions: {values: [1, 2, 3]}
"""
open("sweep.yaml", "w").write(sweep)
print(sweep)
boltzmatch("sweep run sweep.yaml --out sweeps/qm9 --seed 0")

# %% [markdown]
# `sweep run` continues a sweep folder where it stopped (a killed trial is retried), and
# `sweep agent sweeps/qm9 --storage URL` joins it from another machine. The report ranks the
# trials, estimates each parameter's importance (Optuna's fANOVA) and its correlation with the
# metric, and plots them:

# %%
boltzmatch("sweep report sweeps/qm9")
report = open("sweeps/qm9/report.md").read()
print(report[: report.index("## Correlation of each")])

# %% [markdown]
# `sweep best` writes the best trial's parameters and the exact command that reproduces it to
# `best.yaml`:

# %%
boltzmatch("sweep best sweeps/qm9")
