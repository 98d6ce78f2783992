"""OrderedJournal: results in task order whatever order they come in, once each, and a resume that cuts
back half-appended text and keeps what waited."""

import json

import pytest

from boltzmatch.errors import BoltzmatchError
from boltzmatch.utils.journal import OrderedJournal
from boltzmatch.utils.task_pool import TaskPool


def test_results_land_in_task_order_once_each(tmp_path):
    target = tmp_path / "out.txt"
    journal = OrderedJournal(target, 4, {"a": 1})
    journal.add(2, "two\n")
    journal.add(1, "one\n")
    assert target.read_text() == ""  # task 0 has not returned: nothing may be appended yet
    assert journal.missing == [0, 3]
    journal.add(0, "zero\n")
    assert target.read_text() == "zero\none\ntwo\n"
    journal.add(1, "one again\n")  # a retried task's second result
    journal.add(3, "three\n")
    assert journal.complete and target.read_text() == "zero\none\ntwo\nthree\n"
    journal.close()
    assert not journal.parts.exists()
    with pytest.raises(ValueError, match="task 4"):
        journal.add(4, "x")


def test_a_resume_cuts_half_appended_text_and_keeps_waiting_results(tmp_path):
    target = tmp_path / "out.txt"
    journal = OrderedJournal(target, 3, {"a": 1})
    journal.add(0, "zero\n")
    journal.commit()  # what the pool does after each task's results
    journal.add(2, "two\n")
    with open(target, "a") as handle:  # a kill in the middle of appending task 1
        handle.write("on")
    again = OrderedJournal(target, 3, {"a": 1})
    assert again.resumed == 2 and again.missing == [1]
    assert target.read_text() == "zero\n"
    again.add(1, "one\n")
    assert target.read_text() == "zero\none\ntwo\n"


def test_a_result_appended_but_not_yet_recorded_is_computed_again_not_kept_twice(tmp_path):
    target = tmp_path / "out.txt"
    journal = OrderedJournal(target, 2, {})
    journal.add(0, "zero\n")  # appended; the journal is rewritten at most once a second
    again = OrderedJournal(target, 2, {})  # the client was killed before it recorded task 0
    assert again.missing == [0, 1] and target.read_text() == ""
    again.add(0, "zero\n")
    again.add(1, "one\n")
    assert target.read_text() == "zero\none\n"


def test_other_settings_and_foreign_files_are_errors(tmp_path):
    target = tmp_path / "out.txt"
    OrderedJournal(target, 3, {"a": 1}).add(1, "one\n")
    with pytest.raises(BoltzmatchError, match="other settings"):
        OrderedJournal(target, 3, {"a": 2})
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("someone's file\n")
    with pytest.raises(BoltzmatchError, match="foreign.txt: exists"):
        OrderedJournal(foreign, 2, {})
    # a file from before journals existed: the caller says how many tasks it holds
    journal = OrderedJournal(foreign, 2, {}, existing=lambda path: 1)
    assert journal.missing == [1]
    assert json.loads((journal.parts / "journal.json").read_text())["done"] == 1


def test_the_pool_in_this_process_groups_and_reports_every_payload():
    seen, ticks = {}, []
    with TaskPool(workers=1) as pool:
        assert not pool.distributed and pool.chunk_size(100) == 1
        n = pool.run(lambda xs: [x * x for x in xs], [(k, k) for k in range(5)], seen.__setitem__, chunk=2,
                     tick=ticks.append)
    assert n == 5 and seen == {k: k * k for k in range(5)} and ticks == [2, 2, 1]
    with pytest.raises(BoltzmatchError, match="--workers must be a positive integer, got 0"):
        TaskPool(workers=0)
