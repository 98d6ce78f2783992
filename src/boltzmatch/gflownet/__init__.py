"""GFlowNets: policies that build objects step by step and end at x with probability R(x)/Z.

Its own package beside ``generative/``: the objects are discrete and built by actions, there is no
data set, and the judge is the exact terminating distribution where the states can be enumerated.
It shares the run-directory contract, the progress bar and the metric module with the rest."""

from .evaluate import evaluate_exact, terminating_distribution
from .hypergrid import Hypergrid
from .losses import LOSSES
from .train import ENVIRONMENTS, load_gflownet, train_gflownet

__all__ = ["ENVIRONMENTS", "LOSSES", "Hypergrid", "evaluate_exact", "load_gflownet", "terminating_distribution",
           "train_gflownet"]
