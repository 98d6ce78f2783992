"""each_warning_once: a check repeated every round warns once, even when something resets Python's registry."""

import threading
import warnings

from boltzmatch.utils.warnings_once import each_warning_once


def _shown(block) -> list[str]:
    seen: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *args, **kwargs: seen.append(str(message))
        block()
    return seen


def _round(text: str = "one volume") -> None:
    with warnings.catch_warnings():  # what ASE's readers do: it resets the once-per-location registry
        pass
    warnings.warn(text, stacklevel=1)


def test_a_warning_repeated_each_round_shows_once_in_the_block_and_again_after_it():
    assert _shown(lambda: [_round() for _ in range(3)]) == ["one volume"] * 3  # without the block: every round

    def rounds():
        with each_warning_once():
            for _ in range(3):
                _round()
                _round("short run")
        _round()

    assert _shown(rounds) == ["one volume", "short run", "one volume"]


def test_other_threads_are_not_filtered():
    def rounds():
        with each_warning_once():
            _round()
            other = threading.Thread(target=_round)
            other.start()
            other.join()

    assert _shown(rounds) == ["one volume", "one volume"]
