"""Tetris board filling: pieces dropped straight down until they rest, no sliding, no line clears.

A forward action places one rotation of one of the pieces (I, J, L, O, S, T, Z or a subset; rotations
that coincide are kept once) with its left edge at a column; the piece falls from above the board until
the next row would overlap a filled cell or the floor; it must fit entirely. Exit is allowed only
when no piece fits anywhere. A backward action lifts a piece straight up: allowed when those four
cells are filled and dropping that piece at that column onto the rest of the board would land it
exactly there (nothing above it, and it rests). R = exp(sharpness · filled fraction) or (filled fraction)^power.
Boards up to 62 cells are coded as integers, so small boards can be enumerated (breadth first); a lift
is allowed only when the board it leaves is one of them (reachable by drops).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BoltzmatchError
from .env import Environment

SHAPES = {"I": ["####"], "O": ["##", "##"], "T": ["###", ".#."], "S": [".##", "##."], "Z": ["##.", ".##"],
          "J": ["#..", "###"], "L": ["..#", "###"]}


def rotations(rows: list[str]) -> list[np.ndarray]:
    """The distinct 90° rotations of a piece drawn as rows of '#' and '.', as bool arrays."""
    shape = np.array([[c == "#" for c in row] for row in rows])
    seen, out = set(), []
    for k in range(4):
        rotated = np.rot90(shape, k)
        key = (rotated.shape, rotated.tobytes())
        if key not in seen:
            seen.add(key)
            out.append(rotated)
    return out


class Tetris(Environment):
    name = "tetris"

    def __init__(self, width: int = 4, height: int = 4, sharpness: float = 5.0, reward: str = "exp",
                 power: float = 2.0, pieces: str = "IJLOSTZ"):
        pieces = "".join(dict.fromkeys(str(pieces).upper()))
        if not pieces or set(pieces) - set(SHAPES):
            raise BoltzmatchError(f"tetris pieces must be letters from {''.join(SHAPES)}, got {pieces!r}")
        if width < 2 or height < 2 or width * height > 62:
            raise BoltzmatchError(f"tetris boards need 2 ≤ width, height and at most 62 cells, got {width}×{height}")
        if reward not in ("exp", "power"):
            raise BoltzmatchError(f"tetris reward must be exp or power, got {reward!r}")
        self.width, self.height, self.sharpness = int(width), int(height), float(sharpness)
        self.reward, self.power, self.pieces = reward, float(power), pieces
        placements, names = [], []
        for name in pieces:
            rows = SHAPES[name]
            for piece in rotations(rows):
                h, w = piece.shape
                if h > self.height or w > self.width:
                    continue
                for column in range(self.width - w + 1):
                    grids = np.zeros((self.height + 1, self.height, self.width), dtype=bool)
                    for r in range(self.height - h + 1):
                        grids[r, r:r + h, column:column + w] = piece
                    placements.append((grids, self.height - h + 1))
                    names.append(f"{name}{len(names)}@{column}")
        self.action_names = names
        self.placements = torch.as_tensor(np.stack([g for g, _ in placements]))  # (A, H + 1, H, W)
        rows_ok = torch.arange(self.height + 1)[None, :] < torch.tensor([n for _, n in placements])[:, None]
        self.rows_ok = rows_ok  # (A, H + 1): tops a piece can have
        self.n_actions = len(placements) + 1
        self.n_backward = len(placements)
        self.max_length = self.width * self.height // 4
        self.enumerable = True
        self._codes: torch.Tensor | None = None

    def options(self) -> dict:
        return {"width": self.width, "height": self.height, "sharpness": self.sharpness, "reward": self.reward,
                "power": self.power, "pieces": self.pieces}

    def initial(self, n):
        return torch.zeros(n, self.height, self.width, dtype=torch.bool)

    def _collisions(self, states: torch.Tensor) -> torch.Tensor:
        """(n, A, H + 1): piece a with its top at row r overlaps the board (or cannot be there)."""
        overlap = (states[:, None, None] & self.placements[None]).flatten(3).any(3)
        return overlap | ~self.rows_ok[None]

    def _landing(self, collisions: torch.Tensor) -> torch.Tensor:
        """Row where each piece comes to rest: the row before its first collision (−1: does not fit)."""
        return collisions.int().argmax(-1) - 1

    def forward_mask(self, states):
        fits = ~self._collisions(states)[..., 0]
        return torch.cat([fits, ~fits.any(1, keepdim=True)], 1)

    def step(self, states, actions):
        rows = self._landing(self._collisions(states))[torch.arange(len(states)), actions]
        return states | self.placements[actions, rows]

    def _liftable(self, states: torch.Tensor) -> torch.Tensor:
        """(n, A) the row of the piece a that can be lifted (−1 where none)."""
        n, a = len(states), self.n_backward
        outside = (self.placements[None] & ~states[:, None, None]).flatten(3).any(3)
        contained = ~outside & self.rows_ok[None]
        i, j, r = torch.nonzero(contained, as_tuple=True)
        rest = states[i] & ~self.placements[j, r]  # the board without that piece
        collisions = (rest[:, None] & self.placements[j]).flatten(2).any(2) | ~self.rows_ok[j]
        lands_there = self._landing(collisions) == r
        # and the board left behind must itself be buildable from the empty board: a full 2 × 4 board
        # "lifts" a T into a T-shaped hole no sequence of drops can leave, and a P_B that went there
        # would send backward probability out of the DAG (TB then stalls below log Z: measured)
        lands_there &= self._reachable(rest)
        out = torch.full((n, a), -1, dtype=torch.long)
        out[i[lands_there], j[lands_there]] = r[lands_there]
        return out

    def backward_mask(self, states):
        return self._liftable(states) >= 0

    def backward_step(self, states, actions):
        rows = self._liftable(states)[torch.arange(len(states)), actions]
        return states & ~self.placements[actions, rows]

    def log_reward(self, states):
        fraction = states.flatten(1).double().mean(1)
        if self.reward == "exp":
            return self.sharpness * fraction
        return self.power * torch.log(fraction.clamp_min(1e-300))

    def features(self, states):
        return states.flatten(1).float()

    def level(self, states):
        return states.flatten(1).sum(1) // 4

    def state_keys(self, states):
        return self._encode(states) if self.width * self.height <= 62 else None

    def _encode(self, states):
        weights = 2 ** torch.arange(self.width * self.height, dtype=torch.long)
        return (states.flatten(1).long() * weights).sum(1)

    def all_states(self):
        if self._codes is None:
            frontier = self.initial(1)
            found = [frontier]
            seen = set(self._encode(frontier).tolist())
            while len(frontier):
                mask = self.forward_mask(frontier)[:, :-1]
                rows, actions = torch.nonzero(mask, as_tuple=True)
                children = self.step(frontier[rows], actions)
                codes = self._encode(children).tolist()
                keep, fresh = [], set()
                for k, code in enumerate(codes):
                    if code not in seen and code not in fresh:
                        fresh.add(code)
                        keep.append(k)
                seen |= fresh
                frontier = children[keep]
                found.append(frontier)
            states = torch.cat(found)
            codes = self._encode(states)
            order = torch.argsort(codes)
            self._states, self._codes = states[order], codes[order]
        return self._states

    def _reachable(self, states: torch.Tensor) -> torch.Tensor:
        self.all_states()
        codes = self._encode(states)
        position = torch.searchsorted(self._codes, codes).clamp_max(len(self._codes) - 1)
        return self._codes[position] == codes

    def index(self, states):
        self.all_states()
        return torch.searchsorted(self._codes, self._encode(states))
