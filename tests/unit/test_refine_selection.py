"""`refine`'s uncertainty picks spread over replicas instead of filling a round from one."""

import numpy as np

from boltzmatch.workflows.refine_select import top_per_replica


def test_one_wandering_replica_cannot_take_the_whole_budget():
    # replica 0's frames all outscore everyone else's, as a replica stuck somewhere odd does
    keys = [(0, i) for i in range(10)] + [(1, i) for i in range(5)] + [(2, i) for i in range(5)]
    score = np.array([10.0 + i for i in range(10)] + [float(i) for i in range(5)] + [0.5 + i for i in range(5)])
    picked = top_per_replica(keys, score, n=6, cap=2)
    assert picked == [(0, 9), (0, 8), (2, 4), (1, 4), (2, 3), (1, 3)]


def test_the_cap_gives_way_when_too_few_replicas_are_left():
    keys = [(0, i) for i in range(6)] + [(1, 0)]
    score = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    picked = top_per_replica(keys, score, n=5, cap=2)
    assert picked[:3] == [(0, 0), (0, 1), (1, 0)]
    assert sorted(picked[3:]) == [(0, 2), (0, 3)]  # filled from the best of the rest
    assert len(set(picked)) == 5


def test_without_a_binding_cap_it_is_the_plain_top_n():
    rng = np.random.default_rng(0)
    keys = [(r, i) for r in range(8) for i in range(20)]
    score = rng.normal(size=len(keys))
    picked = top_per_replica(keys, score, n=10, cap=10)
    assert picked == [keys[k] for k in np.argsort(-score)[:10]]
