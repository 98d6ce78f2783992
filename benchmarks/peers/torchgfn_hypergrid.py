"""torchgfn 2.4's hypergrid training at its own test settings (peer for gflownet.py).

Runs in torchgfn's virtual environment (benchmarks/.peers/torchgfn: torch 2.13 CPU, numpy < 2).
The settings are those of torchgfn's tutorials/examples/test_scripts.py: batch 128, 32,000
trajectories, seed 1, MLPs of 2 × 256 (forward and backward policies, not tied; for FM one edge-flow
MLP), Adam lr 1e-3 and lr 0.1 for log Z, on-policy (ε = 0), reward R0 0.1, R1 0.5, R2 2. Only the
training loop is timed; the empirical L1 (Σ|p̂ − p| over terminating states) comes afterwards from
``env.validate`` with 200,000 fresh samples, as torchgfn's tests report it.

Prints one JSON line: {"l1_empirical", "jsd_empirical", "log_z", "log_z_true", "wall_seconds",
"validation_seconds", "iterations"}.
"""

import argparse
import json
import time

import torch
from gfn.estimators import DiscretePolicyEstimator
from gfn.gflownet import FMGFlowNet, TBGFlowNet
from gfn.gym import HyperGrid
from gfn.preprocessors import KHotPreprocessor
from gfn.samplers import Sampler
from gfn.utils.common import set_seed
from gfn.utils.modules import MLP


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ndim", type=int, default=2)
    parser.add_argument("--height", type=int, default=8)
    parser.add_argument("--loss", choices=("tb", "fm"), default="tb")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-trajectories", type=int, default=32_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation-samples", type=int, default=200_000)
    args = parser.parse_args()

    set_seed(args.seed)
    env = HyperGrid(ndim=args.ndim, height=args.height, reward_fn_str="original",
                    reward_fn_kwargs={"R0": 0.1, "R1": 0.5, "R2": 2.0}, calculate_partition=True,
                    store_all_states=True)
    preprocessor = KHotPreprocessor(height=env.height, ndim=env.ndim)
    if args.loss == "tb":
        pf = DiscretePolicyEstimator(MLP(preprocessor.output_dim, env.n_actions, hidden_dim=256, n_hidden_layers=2),
                                     env.n_actions, preprocessor=preprocessor, is_backward=False)
        pb = DiscretePolicyEstimator(MLP(preprocessor.output_dim, env.n_actions - 1, hidden_dim=256,
                                         n_hidden_layers=2),
                                     env.n_actions, preprocessor=preprocessor, is_backward=True)
        gflownet = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
        optimizer = torch.optim.Adam(gflownet.pf_pb_parameters(), lr=1e-3)
        optimizer.add_param_group({"params": gflownet.logz_parameters(), "lr": 0.1})
        sampler = Sampler(estimator=pf)
    else:
        log_f = DiscretePolicyEstimator(MLP(preprocessor.output_dim, env.n_actions, hidden_dim=256,
                                            n_hidden_layers=2),
                                        env.n_actions, preprocessor=preprocessor, is_backward=False)
        gflownet = FMGFlowNet(log_f)
        optimizer = torch.optim.Adam(gflownet.parameters(), lr=1e-3)
        sampler = Sampler(estimator=log_f)

    iterations = args.n_trajectories // args.batch_size
    start = time.perf_counter()
    for _ in range(iterations):
        trajectories = sampler.sample_trajectories(env, n=args.batch_size, save_logprobs=args.loss == "tb",
                                                   save_estimator_outputs=False, epsilon=0.0)
        training_samples = gflownet.to_training_samples(trajectories)
        optimizer.zero_grad()
        loss = gflownet.loss(env, training_samples, recalculate_all_logprobs=False)
        loss.backward()
        optimizer.step()
    wall = time.perf_counter() - start

    start = time.perf_counter()
    info, _ = env.validate(gflownet, args.validation_samples, check_sample_sufficiency=False)
    result = {"l1_empirical": info["l1_dist"], "jsd_empirical": info["jsd"],
              "log_z": float(gflownet.logZ.item()) if args.loss == "tb" else None,
              "log_z_true": float(env.log_partition()), "wall_seconds": wall,
              "validation_seconds": time.perf_counter() - start, "iterations": iterations}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
