"""The one exception type for user errors.

A :class:`BoltzmatchError` carries a one-line message that names the file (and the line,
row or key) and what was expected. The CLI prints it without a traceback and exits 2.
"""

from __future__ import annotations

from pathlib import Path


class BoltzmatchError(Exception):
    """A user error: bad input, a missing label, an unknown unit or key."""


def file_error(path: str | Path, where: str | None, message: str) -> BoltzmatchError:
    """Build an error naming ``path`` and, if given, ``where`` (``line 12``, ``row 3``, ``key E``)."""
    location = f"{path}" if where is None else f"{path}, {where}"
    return BoltzmatchError(f"{location}: {message}")
