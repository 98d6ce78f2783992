"""Progress observers: the desktop app's workers watch and stop library work through its progress bars."""

import io
import threading

import numpy as np
import pytest

from boltzmatch.utils.progress import Cancelled, LineProgress, ObservedProgress, Observer, observed, progress_bar


def test_without_an_observer_a_file_gets_line_progress():
    bar = progress_bar(range(3), total=3, desc="x", file=io.StringIO())
    assert isinstance(bar, LineProgress) and not isinstance(bar, ObservedProgress)


def test_an_observer_sees_every_update_and_postfix_in_its_own_thread_only():
    seen = []
    observer = Observer(lambda desc, n, total, postfix: seen.append((desc, n, total, postfix.get("loss"))))
    other_thread_bars = []
    with observed(observer):
        bar = progress_bar(range(4), total=4, desc="train")
        worker = threading.Thread(target=lambda: other_thread_bars.append(progress_bar(range(2), file=io.StringIO())))
        worker.start()
        worker.join()
        items = []
        for i in bar:
            items.append(i)
            bar.set_postfix(loss=0.5)
    assert items == [0, 1, 2, 3]
    assert seen[-1] == ("train", 4, 4, 0.5) and [n for _, n, _, _ in seen if n] == [1, 1, 2, 2, 3, 3, 4]
    assert not isinstance(other_thread_bars[0], ObservedProgress)
    assert not isinstance(progress_bar(range(2), file=io.StringIO()), ObservedProgress)  # block left


def test_a_stop_request_raises_cancelled_at_the_next_update_except_in_graceful_blocks():
    observer = Observer()
    with observed(observer):
        bar = progress_bar(total=10, desc="work")
        bar.update(1)
        observer.request_stop()
        observer.graceful += 1
        bar.update(1)  # a graceful block (MD) polls stop_requested itself and stops at a step boundary
        assert observer.stop_requested
        observer.graceful -= 1
        with pytest.raises(Cancelled, match="stopped by the user"):
            bar.update(1)


def test_training_bounded_by_time_shows_the_budget_not_the_epochs(tmp_path):
    """Issue 39: the demo's "train: 72/100000 epoch (0%)"; with a time budget and a huge epoch count the
    bar counts the budget's seconds and names the epoch in its postfix."""
    from boltzmatch.data import write_structures
    from boltzmatch.data.labels import make_structure
    from boltzmatch.training import train
    from boltzmatch.utils.progress import Observer, observed

    rng = np.random.default_rng(0)
    frames = [make_structure([1, 1], np.array([[0, 0, 0], [0.74 + 0.05 * rng.normal(), 0, 0]]),
                             energy=float(rng.normal()), forces=rng.normal(size=(2, 3))) for _ in range(20)]
    data = tmp_path / "h2.xyz"
    write_structures(data, frames)
    reports = []
    with observed(Observer(lambda desc, n, total, postfix: reports.append((desc, n, total, dict(postfix))))):
        train(data, out=tmp_path / "run", model="mlp", epochs=100_000, max_minutes=0.02, batch_size=10)
    desc, n, total, postfix = reports[-1]
    assert desc.endswith("(time budget)") and total == 1 and n <= total and "epoch" in postfix
