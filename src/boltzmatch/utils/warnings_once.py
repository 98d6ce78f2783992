"""Show each warning once in a block of work that repeats itself (the rounds of ``refine``).

Python's once-per-location rule does not hold across a long run: every ``warnings.catch_warnings``
(ASE's readers use one) resets the registry that remembers what was shown, so a check made again each
round (the same reference, the same device) warned again each round.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def each_warning_once() -> Iterator[None]:
    """Within the block, a warning whose category and text were already shown in it is not shown again; it
    still shows at once, where it is raised. Only the thread that entered the block is filtered; a filter
    installed inside the block (``pytest.warns``, ``catch_warnings(record=True)``) sees every warning."""
    shown: set[tuple[type, str]] = set()
    previous = warnings.showwarning
    owner = threading.get_ident()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if threading.get_ident() == owner:
            key = (category, str(message))
            if key in shown:
                return
            shown.add(key)
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = previous
