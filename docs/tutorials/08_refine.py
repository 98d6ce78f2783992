# %% [markdown]
# # `refine`: fine-tune where the model's own MD goes wrong
#
# Fitting reference frames fixes a model where the reference went; MD with an imperfect model goes
# elsewhere and collapses there. `boltzmatch refine` closes the loop, round after round:
#
# 1. simulate replicas with the current model (the batched MD of `simulate`);
# 2. pick frames to label, drawn uniformly from the replicas' trajectories (`--selection failures`
#    takes half from the stretch just before each collapse and the rest where a cheap uncertainty
#    signal is highest; it labels frames far above anything thermal, and on four molecules it left
#    the held-out force error higher than uniform frames did, with more stability on malonaldehyde,
#    less on glycine: docs/architecture.md);
# 3. label them with the reference method (`xtb`, `emt`, or `openmm` for alanine dipeptide);
# 4. fine-tune with the Fisher objective on the training frames plus every label so far: reference
#    samples and model samples, a symmetric Fisher divergence.
#
# After the last round one more MD judges the final model. Every stage is written to disk as it
# finishes, and labels one frame at a time, so a killed `refine` resumes where it stopped and
# never labels a frame twice.

# %%
import shlex

from ase.io import read

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 0.75 --interval 10 --equilibration 200 "
           "--seed 1 --out ethanol-train.xyz --quiet")
boltzmatch("generate ethanol --calculator xtb --temperature 500 --time 0.5 --interval 10 --equilibration 200 "
           "--seed 2 --out ethanol-test.xyz --quiet")
boltzmatch("train ethanol-train.xyz --model schnet --objective energy-forces --epochs 200 --batch-size 16 "
           "--max-minutes 0.1 --seed 0 --out runs/schnet-brief --quiet")

# %% [markdown]
# ## Two rounds
#
# 8 replicas × 1 ps per round at 500 K, 16 xTB labels per round, 5 fine-tuning epochs, force MAE on
# the separately seeded trajectory after every round (real work: 32 or more replicas, 10 ps or more
# per round, 64 labels; `benchmarks/refine.py` runs the full comparison with baselines).

# %%
boltzmatch("refine runs/schnet-brief --data ethanol-train.xyz --calculator xtb --temperature 500 --rounds 2 "
           "--replicas 8 --time 1 --label-budget 16 --epochs 5 --test ethanol-test.xyz --seed 0 --out refine --quiet")

# %% [markdown]
# The folder holds one `round_NN/` per round (`md/`, `candidates.xyz`, `labels.xyz`, `union.xyz`,
# the fine-tuned `model/`), and `refine.csv`, `refine.json` and `refine.png`: survival of each
# round's replicas, and collapsed fraction and held-out force MAE against the labels spent.
# The final model is the last round's `model/`, a run directory like any other. Each label keeps
# the replica and the time it came from:

# %%
for number in range(2):
    labels = read(f"refine/round_{number:02d}/labels.xyz", index=":")
    times = sorted(round(float(a.info["time_ps"]), 2) for a in labels)
    print(f"round {number}: {len(labels)} xTB labels from replicas {sorted({int(a.info['replica']) for a in labels})}, "
          f"at {times[0]}–{times[-1]} ps")

# %% [markdown]
# ## Baselines
#
# The same loop as plain active learning, at the same number of labels: the same uniform frames and
# energy+force retraining instead of Fisher fine-tuning:
#
# ```
# boltzmatch refine RUN --data TRAIN --objective energy-forces --out plain-al
# ```
#
# Fisher fine-tuning without the loop is `boltzmatch finetune RUN --data MORE_REFERENCE_FRAMES
# --objective fisher`. Judge all of them with `boltzmatch compare RUN ... --test HELD_OUT
# --simulate` (tutorial 4).
