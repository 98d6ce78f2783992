"""Progress observers: the desktop app's workers watch and stop library work through its progress bars."""

import io
import threading

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
