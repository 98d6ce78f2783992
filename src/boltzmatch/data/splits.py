"""Train/validation/test splits: random with a seed, contiguous blocks, or from an index file.

Contiguous blocks keep time-correlated MD frames out of the test set: the first frames train,
the next validate, the last test. A run directory records its split as ``split.npz``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BoltzmatchError, file_error
from ..utils.atomic import atomic_path

SPLIT_METHODS = ("random", "contiguous")


@dataclass(frozen=True)
class Split:
    """Indices into a list of structures."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def save(self, path: str | Path) -> Path:
        """Write as ``.npz`` (keys ``train``, ``val``, ``test``), atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, train=self.train, val=self.val, test=self.test)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, n_structures: int | None = None) -> Split:
        """Read an index file: ``.npz`` or ``.json`` with integer lists ``train``, ``val``, ``test``.

        SchNetPack's ``split.npz`` (keys ``train_idx``, ``val_idx``, ``test_idx``) is read as well, so a
        model can be trained here on exactly the split a SchNetPack run used.
        """
        path = Path(path)
        try:
            if path.suffix == ".json":
                raw = json.loads(path.read_text())
            else:
                with np.load(path, allow_pickle=False) as data:
                    raw = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise file_error(path, None, "no such file") from None
        except Exception as exc:
            raise file_error(path, None, f"not a split file ({type(exc).__name__}: {exc})") from None
        if "train" not in raw and "train_idx" in raw:  # SchNetPack's layout
            raw = {key[: -len("_idx")]: value for key, value in raw.items() if key.endswith("_idx")}
        if "train" not in raw:
            raise file_error(path, "key 'train'", "missing; expected keys train, val, test "
                                                  "(or SchNetPack's train_idx, val_idx, test_idx)")
        parts = {}
        for key in ("train", "val", "test"):
            try:
                parts[key] = np.asarray(raw.get(key, []), dtype=int).reshape(-1)
            except (TypeError, ValueError):
                raise file_error(path, f"key {key!r}", "expected a list of integer indices") from None
            if n_structures is not None and parts[key].size and (
                parts[key].min() < 0 or parts[key].max() >= n_structures
            ):
                raise file_error(path, f"key {key!r}", f"indices must lie in 0..{n_structures - 1}")
        return cls(**parts)


def split_indices(
    n_structures: int,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    method: str = "random",
) -> Split:
    """Split ``range(n_structures)`` into train, validation and test indices."""
    if method not in SPLIT_METHODS:
        raise BoltzmatchError(f"unknown split method {method!r}; expected one of {', '.join(SPLIT_METHODS)}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise BoltzmatchError(f"{name} must lie in [0, 1), got {value}")
    n_val = int(round(val_fraction * n_structures))
    n_test = int(round(test_fraction * n_structures))
    n_train = n_structures - n_val - n_test
    if n_train < 1:
        raise BoltzmatchError(
            f"no training structures left: {n_structures} structures, val_fraction {val_fraction}, "
            f"test_fraction {test_fraction}"
        )
    order = np.arange(n_structures)
    if method == "random":
        order = np.random.default_rng(seed).permutation(n_structures)
    return Split(
        train=np.sort(order[:n_train]),
        val=np.sort(order[n_train:n_train + n_val]),
        test=np.sort(order[n_train + n_val:]),
    )
