# %% [markdown]
# # GFlowNets: sample in proportion to a reward
#
# A GFlowNet learns a policy that builds an object step by step so that it ends at x with
# probability R(x)/Z. With R = exp(−βU) it is one more sampler of a Boltzmann distribution. On
# environments small enough to enumerate, boltzmatch computes the policy's exact terminating
# distribution by dynamic programming over the state graph and reports exact distances to R/Z, as
# well as the empirical L1 from samples that torchgfn reports.
#
# Here: torchgfn's hypergrid (2 dimensions, height 8; reward
# R = R0 + R1·∏[0.25 < a_i] + R2·∏[0.3 < a_i < 0.4] with a_i = |x_i/(H−1) − 0.5|) trained by
# trajectory balance.

# %%
import shlex

from boltzmatch.cli.main import main


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


boltzmatch("gflownet train --env hypergrid --ndim 2 --height 8 --loss tb --batch-size 64 --n-trajectories 6400 "
           "--seed 1 --out hypergrid-tb --quiet")

# %% [markdown]
# `gflownet evaluate` writes the exact and empirical distances and the plots: training curves and
# the sampled distribution beside the target.

# %%
boltzmatch("gflownet evaluate hypergrid-tb --json")

# %% [markdown]
# `l1_exact` and `tv_exact` compare the policy's exact terminating distribution with R/Z;
# `l1_empirical` is what the same comparison gives from a finite sample (it never reaches 0: with
# 10,000 samples over 64 states its floor is a few hundredths), and `l1_empirical_floor` what as many
# exact draws from R/Z score, the number to read it against. `log_z` is the learnt log Z against
# the enumerated `log_z_true`. Other environments: `--env tetris` (board filling) and
# `--env torsions` (alanine dipeptide φ/ψ on a grid with reward exp(−βU) from a force field).
