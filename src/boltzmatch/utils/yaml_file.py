"""Reading YAML files with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import BoltzmatchError


def read_yaml(path: str | Path) -> Any:
    """The parsed content of ``path``; a missing file or invalid YAML is a :class:`BoltzmatchError`."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BoltzmatchError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise BoltzmatchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
